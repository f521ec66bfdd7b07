//! Integration tests of the generator: determinism, every accepted format present,
//! a manifest that points at real rows, and speed at scale 0.1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use townstat_generate::{Options, Summary, generate};

fn run(dir: &Path, scale: f64, seed: u64) -> Summary {
    generate(dir, &Options { scale, seed }).expect("generation succeeds")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn same_seed_gives_identical_bytes() {
    let a = tempfile::tempdir().expect("temp dir");
    let b = tempfile::tempdir().expect("temp dir");
    let sa = run(a.path(), 0.1, 7);
    let sb = run(b.path(), 0.1, 7);
    assert_eq!(sa.files, sb.files);
    assert_eq!(sa.injected, sb.injected);
    for (f, _) in &sa.files {
        assert!(
            read(&a.path().join(f)) == read(&b.path().join(f)),
            "{} differs",
            f.display()
        );
    }
    let c = tempfile::tempdir().expect("temp dir");
    run(c.path(), 0.1, 8);
    let f = Path::new("enterprise/registry_01_market_utf8.csv");
    assert!(
        read(&a.path().join(f)) != read(&c.path().join(f)),
        "another seed, other data"
    );
}

#[test]
fn every_format_is_present_and_the_manifest_points_at_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = Instant::now();
    let summary = run(dir.path(), 0.1, 1);
    assert!(
        start.elapsed().as_secs() < 60,
        "scale 0.1 took {:?}",
        start.elapsed()
    );
    let out = dir.path();

    // Every kind has files, each listed with its row count, and XLSX files stay small.
    let kinds = [
        "enterprise",
        "enterprise_annual",
        "designation",
        "employment",
        "patent",
        "financing",
        "quality_mark",
        "project",
        "investment_deal",
    ];
    for kind in kinds {
        let n = summary
            .files
            .iter()
            .filter(|(f, _)| f.starts_with(kind))
            .count();
        assert!(n >= 4, "{kind} has {n} files");
    }
    for (f, rows) in &summary.files {
        assert!(out.join(f).is_file(), "{}", f.display());
        assert!(*rows > 0, "{} is empty", f.display());
    }

    // The formats and encodings.
    let mut seen = BTreeSet::new();
    for (f, _) in &summary.files {
        let bytes = read(&out.join(f));
        let name = f.to_string_lossy();
        match f.extension().and_then(|e| e.to_str()) {
            Some("xlsx") => {
                assert!(bytes.starts_with(b"PK"), "{name}");
                seen.insert("xlsx");
            }
            Some("ndjson") => {
                let text = String::from_utf8(bytes).expect("NDJSON is UTF-8");
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                    assert!(v.is_object());
                }
                seen.insert("ndjson");
            }
            Some("csv" | "tsv") if name.ends_with("towns.csv") || name.starts_with("_manifest") => {
            }
            Some("csv" | "tsv") => {
                if bytes.starts_with(b"\xEF\xBB\xBF") {
                    seen.insert("bom");
                }
                match std::str::from_utf8(&bytes) {
                    Err(_) => {
                        let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
                        assert!(!bad, "{name} is neither UTF-8 nor GBK");
                        assert!(text.contains("信用代码"));
                        seen.insert("gbk");
                    }
                    Ok(text) => {
                        let header = text.lines().next().unwrap_or("");
                        if header.contains('\t') {
                            seen.insert("tab");
                        } else if header.contains(';') {
                            seen.insert("semicolon");
                        } else {
                            seen.insert("utf8");
                        }
                        if text.contains("\"\n")
                            || text.split('"').skip(1).step_by(2).any(|q| q.contains('\n'))
                        {
                            seen.insert("multiline");
                        }
                    }
                }
            }
            other => panic!("unexpected file {name} ({other:?})"),
        }
    }
    for want in [
        "xlsx",
        "ndjson",
        "bom",
        "gbk",
        "tab",
        "semicolon",
        "utf8",
        "multiline",
    ] {
        assert!(seen.contains(want), "no {want} file; saw {seen:?}");
    }

    // The town registry loads.
    let towns =
        townstat_domain::town::load_registry(&out.join("towns.csv")).expect("towns.csv loads");
    assert_eq!(towns.len(), 10);

    // Manifest lines: existing files, plausible rows, known codes; every reason at least once.
    let manifest = String::from_utf8(read(&out.join("_manifest/injected.csv"))).expect("UTF-8");
    let mut lines = manifest.lines();
    assert_eq!(lines.next(), Some("file,row_number,kind,expect"));
    let rows: BTreeMap<String, u64> = summary
        .files
        .iter()
        .map(|(f, n)| (f.to_string_lossy().replace('\\', "/"), *n))
        .collect();
    let mut codes = BTreeMap::new();
    let mut count = 0;
    for line in lines {
        count += 1;
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 4, "{line}");
        let n = rows
            .get(f[0])
            .unwrap_or_else(|| panic!("{line}: no such file"));
        let row: u64 = f[1].parse().expect("row number");
        assert!(row >= 1, "{line}");
        if f[0].ends_with(".ndjson") {
            assert!(row <= *n, "{line}");
        }
        assert!(f[0].starts_with(f[2]), "{line}");
        *codes.entry(f[3].to_string()).or_insert(0) += 1;
    }
    assert_eq!(count, summary.injected);
    let mut expected: Vec<&str> = townstat_domain::Reason::ALL
        .iter()
        .map(|r| r.code())
        .collect();
    expected.extend([
        "legacy_division_split",
        "division_from_address",
        "unlinked_applicant",
        "exact_duplicate",
    ]);
    for code in &expected {
        assert!(codes.contains_key(*code), "no {code} injected: {codes:?}");
    }
    for code in codes.keys() {
        assert!(expected.contains(&code.as_str()), "unknown code {code}");
    }
}

#[test]
fn a_bad_scale_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        generate(
            dir.path(),
            &Options {
                scale: 0.0,
                seed: 1
            }
        )
        .is_err()
    );
    assert!(
        generate(
            dir.path(),
            &Options {
                scale: f64::NAN,
                seed: 1
            }
        )
        .is_err()
    );
}
