//! Fuzzing of everything ingestion reads from outside: the CSV, NDJSON and XLSX
//! readers with header finding and every cell parser behind them, the pipeline file,
//! the alias tables and the town registry.
//!
//! It runs on stable Rust inside the ordinary test binary, so CI runs it: each target
//! mutates real files (the bad-input corpus and the bundled sample) — bit flips, byte
//! insertions and deletions, truncation, spliced and repeated runs, random bytes — and
//! feeds every mutant to the real entry point. A target passes when no input panics,
//! and, for the readers, every file is accounted for: it is loaded with `rows_read =
//! rows_loaded + rows_duplicate + rows_quarantined`, or rejected whole with 0 rows
//! and a message that names it.
//!
//! The mutants come from a seeded generator (ChaCha8), so a failure is reproduced by
//! its seed, which the failure message prints: `TOWNSTAT_FUZZ_SEED=<seed>`. Time per
//! target: `TOWNSTAT_FUZZ_SECONDS` (default 3; CI sets its own); the number of
//! inputs each target ran is printed (`cargo test fuzz -- --nocapture`). A crash found
//! here becomes a file of `tests/corpus` or `tests/hostile` with its expected outcome.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use townstat_domain::town::TownIndex;
use townstat_ingest::{FileStatus, IngestOptions, Pipeline, Registry, ingest};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn budget() -> Duration {
    let secs = std::env::var("TOWNSTAT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs.max(0.1))
}

fn base_seed() -> u64 {
    std::env::var("TOWNSTAT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_204)
}

/// Seed files of one extension, with the record kind their folder names. Files above
/// 64 KiB are cut to their first 64 KiB for text (a mutant stays quick to read);
/// workbooks are taken whole below 64 KiB and left out above.
fn seeds(ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for dir in ["tests/corpus/files", "sample-data/raw"] {
        let Ok(kinds) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        let mut kinds: Vec<_> = kinds.flatten().map(|e| e.path()).collect();
        kinds.sort();
        for kind_dir in kinds {
            let Some(kind) = kind_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // employment_utf8 holds employment files read with a declared encoding.
            let kind = kind.trim_end_matches("_utf8").to_string();
            if townstat_domain::schema::table(&kind).is_none_or(|t| t.kind != "source") {
                continue;
            }
            let Ok(files) = std::fs::read_dir(&kind_dir) else {
                continue;
            };
            let mut files: Vec<_> = files.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let matches = f
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case(ext));
                if !matches {
                    continue;
                }
                let Ok(mut bytes) = std::fs::read(&f) else {
                    continue;
                };
                if bytes.len() > 64 * 1024 {
                    if ext == "xlsx" {
                        continue;
                    }
                    bytes.truncate(64 * 1024);
                }
                out.push((kind.clone(), bytes));
            }
        }
    }
    assert!(!out.is_empty(), "no seed files with extension {ext}");
    out
}

/// Cell values that have broken parsers before, or could: huge, tiny and odd numbers,
/// dates out of range, formula text, quotes, separators. `ZEROS` stands for `0.`
/// followed by 30 to 200 zeros.
const DICTIONARY: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775808",
    "170141183460469231731687303715884105727",
    "99999999999999999999999999999999999999999",
    "1e308",
    "1e-200",
    "-1e-7",
    "NaN",
    "Infinity",
    "-0",
    "ZEROS",
    ".5",
    "5.",
    "1,234,567,890,123,456,789.99亿",
    "12.5万元",
    "3.5亿亿",
    "0000-01-01",
    "9999-12-31",
    "2023-05-01T25:99:99",
    "2023年13月1日",
    "2958466",
    "-1",
    "202313",
    "=cmd|' /C calc'!A0",
    "@SUM(1)",
    "\"",
    "\"\"\"",
    "",
    "\u{feff}",
    "91310110666007217T",
    "201710601862.3",
];

/// One mutant of `seed`: one to four random edits.
fn mutate(rng: &mut ChaCha8Rng, seed: &[u8], pool: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let edits = rng.random_range(1..=4);
    for _ in 0..edits {
        let len = b.len();
        match rng.random_range(0..11) {
            // Flip one bit.
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            // Overwrite a byte with an interesting value.
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                const SPECIAL: &[u8] = b"\0\r\n\"',;\t{}[]:\\-.eE0129\xff\xfe\x80";
                b[i] = SPECIAL[rng.random_range(0..SPECIAL.len())];
            }
            // Insert random bytes.
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..16);
                let ins: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(i..i, ins);
            }
            // Delete a run.
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                b.drain(i..i + n);
            }
            // Truncate.
            4 if len > 0 => {
                let i = rng.random_range(0..len);
                b.truncate(i);
            }
            // Repeat a run in place.
            5 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(256));
                let run = b[i..i + n].to_vec();
                for _ in 0..rng.random_range(1..8) {
                    b.splice(i..i, run.iter().copied());
                }
            }
            // Splice in a run of another seed of the same format.
            6 => {
                let other = &pool[rng.random_range(0..pool.len())].1;
                if !other.is_empty() {
                    let j = rng.random_range(0..other.len());
                    let n = rng.random_range(1..=(other.len() - j).min(512));
                    let i = rng.random_range(0..=len);
                    b.splice(i..i, other[j..j + n].iter().copied());
                }
            }
            // Replace one field (text between separators) with a value from the
            // dictionary: the values that have broken parsers before, or could.
            7..=9 if len > 0 => {
                for _ in 0..rng.random_range(1..=6) {
                    let len = b.len();
                    if len == 0 {
                        break;
                    }
                    let from = rng.random_range(0..len);
                    let is_sep = |c: u8| b",;\t\r\n\":{}[]".contains(&c);
                    let start = (0..from).rev().find(|&i| is_sep(b[i])).map_or(0, |i| i + 1);
                    let end = (from..len).find(|&j| is_sep(b[j])).unwrap_or(len);
                    let value = DICTIONARY[rng.random_range(0..DICTIONARY.len())];
                    let value = if value == "ZEROS" {
                        format!("0.{}", "0".repeat(rng.random_range(30..200)))
                    } else {
                        value.to_string()
                    };
                    b.splice(start..end, value.bytes());
                }
            }
            // Random bytes of the same length.
            _ => {
                if rng.random_ratio(1, 8) {
                    b = (0..len.min(4096)).map(|_| rng.random()).collect();
                }
            }
        }
    }
    b
}

/// Feeds mutants of the seeds with extension `ext` to `ingest` until the time budget
/// is spent; returns how many inputs it ran.
fn fuzz_reader(ext: &str) -> usize {
    let pool = seeds(ext);
    let dir = tempfile::tempdir().expect("temp dir");
    let enums = repo().join("pipelines/enums.toml");
    let towns = repo().join("tests/corpus/towns.csv");
    let never = |_: &str| false;
    let town_index = TownIndex::new(
        &townstat_domain::town::load_registry(&towns).expect("the corpus registry loads"),
    );
    let opts = IngestOptions {
        run_id: "fuzz",
        as_of: NaiveDate::from_ymd_opt(2026, 1, 15).expect("date"),
        already_loaded: &never,
        on_file: &|_| {},
        towns: &town_index,
        stage: dir.path(),
    };
    // One pipeline per record kind, each reading the one file `input.<ext>`.
    let mut pipelines = std::collections::BTreeMap::new();
    for (kind, _) in &pool {
        if pipelines.contains_key(kind) {
            continue;
        }
        let sub = dir.path().join(kind);
        std::fs::create_dir_all(&sub).expect("kind dir");
        let text = format!(
            "enums = {:?}\ntowns = {:?}\n[[source]]\nname = \"fuzz\"\nkind = {kind:?}\nglob = [\"input.{ext}\"]\n",
            enums.to_string_lossy(),
            towns.to_string_lossy(),
        );
        let path = sub.join("pipeline.toml");
        let pipeline = Pipeline::from_toml(&text, &path).expect("fuzz pipeline");
        pipelines.insert(kind.clone(), (sub, pipeline));
    }
    let seed = base_seed() ^ ext.bytes().fold(0u64, |h, c| h.wrapping_mul(31) + c as u64);
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < budget() {
        // Each input has its own seed, so one failure is reproduced alone.
        let case_seed = seed.wrapping_add(n as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(case_seed);
        let (kind, original) = &pool[rng.random_range(0..pool.len())];
        let bytes = mutate(&mut rng, original, &pool);
        let (sub, pipeline) = &pipelines[kind];
        let input = sub.join(format!("input.{ext}"));
        std::fs::write(&input, &bytes).expect("write mutant");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ingest(pipeline, &opts, Registry::default())
        }));
        let keep = |why: &str| -> ! {
            let kept = std::env::temp_dir().join(format!("townstat-fuzz-{case_seed}.{ext}"));
            let _ = std::fs::write(&kept, &bytes);
            panic!(
                "{ext} fuzz input {n} ({kind}, TOWNSTAT_FUZZ_SEED={}): {why}; the input is kept at {}",
                base_seed(),
                kept.display()
            )
        };
        let out = match outcome {
            Err(_) => keep("ingest panicked"),
            Ok(Err(e)) => keep(&format!(
                "ingest failed as a whole instead of rejecting the file: {e}"
            )),
            Ok(Ok(out)) => out,
        };
        if out.files.len() != 1 {
            keep(&format!("{} file reports for one file", out.files.len()));
        }
        let f = &out.files[0];
        match f.status {
            FileStatus::Loaded => {
                if f.rows_read != f.rows_loaded + f.rows_duplicate + f.rows_quarantined {
                    keep(&format!(
                        "rows do not add up: read {} loaded {} duplicate {} quarantined {}",
                        f.rows_read, f.rows_loaded, f.rows_duplicate, f.rows_quarantined
                    ));
                }
            }
            FileStatus::Rejected => {
                let message = f.message.as_deref().unwrap_or("");
                if f.rows_read != 0 || !message.contains(&format!("input.{ext}")) {
                    keep(&format!(
                        "a rejected file must report 0 rows and name itself: {} rows, {message:?}",
                        f.rows_read
                    ));
                }
                if message.to_lowercase().contains("panic") {
                    keep(&format!("a reader panicked (caught): {message}"));
                }
            }
            FileStatus::Skipped => keep("skipped although nothing was loaded before"),
        }
        n += 1;
    }
    println!(
        "fuzz {ext}: {n} inputs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    n
}

#[test]
fn fuzz_csv_reader() {
    assert!(fuzz_reader("csv") > 0);
}

#[test]
fn fuzz_ndjson_reader() {
    assert!(fuzz_reader("ndjson") > 0);
}

#[test]
fn fuzz_xlsx_reader() {
    assert!(fuzz_reader("xlsx") > 0);
}

/// Mutants of a configuration file given to its loader: an error is expected, a
/// panic is not.
fn fuzz_config(name: &str, original: &Path, load: &dyn Fn(&str, &Path)) -> usize {
    let text = std::fs::read(original).expect("config file");
    let pool = vec![(String::new(), text.clone())];
    let seed = base_seed()
        ^ name
            .bytes()
            .fold(0u64, |h, c| h.wrapping_mul(31) + c as u64);
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < budget() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(n as u64));
        let bytes = mutate(&mut rng, &text, &pool);
        let mutant = String::from_utf8_lossy(&bytes).into_owned();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(&mutant, original)));
        assert!(
            outcome.is_ok(),
            "{name} fuzz input {n} panicked (TOWNSTAT_FUZZ_SEED={}):\n{mutant}",
            base_seed()
        );
        n += 1;
    }
    println!(
        "fuzz {name}: {n} inputs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    n
}

#[test]
fn fuzz_pipeline_and_alias_files() {
    let n = fuzz_config(
        "pipeline",
        &repo().join("pipelines/nightly.toml"),
        &|text, path| {
            let _ = Pipeline::from_toml(text, path);
        },
    );
    assert!(n > 0);
    let n = fuzz_config(
        "enums",
        &repo().join("pipelines/enums.toml"),
        &|text, path| {
            let _ = townstat_domain::enums::AliasTables::from_toml(text, path);
        },
    );
    assert!(n > 0);
    let dir = tempfile::tempdir().expect("temp dir");
    let n = fuzz_config(
        "towns",
        &repo().join("sample-data/raw/towns.csv"),
        &|text, _| {
            let path = dir.path().join("towns.csv");
            std::fs::write(&path, text).expect("write towns");
            let _ = townstat_domain::town::load_registry(&path);
        },
    );
    assert!(n > 0);
}
