//! The generator and the pipeline agree: every problem the generator injected (its
//! manifest) is found by ingestion with exactly that reason or warning, nothing else is
//! quarantined or warned, and the exact duplicates are counted where they were put.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::{sql_csv, townstat};

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    r.records()
        .map(|rec| rec.expect("csv").iter().map(str::to_string).collect())
        .collect()
}

/// `…/gen/enterprise/x.csv` → `enterprise/x.csv`.
fn rel(path: &str) -> String {
    let parts: Vec<&str> = path.rsplitn(3, '/').collect();
    format!("{}/{}", parts[1], parts[0])
}

fn pipeline_for(dir: &Path) -> std::path::PathBuf {
    let repo = crate::support::repo();
    let mut text = format!(
        "enums = \"{}\"\ntowns = \"{}\"\nevaluation = \"{}\"\ntargets = \"{}\"\n",
        repo.join("pipelines/enums.toml").display(),
        dir.join("towns.csv").display(),
        repo.join("pipelines/evaluation.toml").display(),
        repo.join("pipelines/targets.toml").display(),
    );
    // Every source kind the generator wrote a folder for (all nine).
    for kind in townstat_domain::schema::source_kind_names()
        .into_iter()
        .filter(|k| dir.join(k).is_dir())
    {
        text.push_str(&format!(
            "[[source]]\nname = \"{kind}\"\nkind = \"{kind}\"\nglob = [\"{}/*\"]\n",
            dir.join(kind).display()
        ));
    }
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).expect("pipeline");
    p
}

#[test]
fn injected_problems_are_found_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("gen");
    let wh = tmp.path().join("wh");
    let out = townstat(
        &wh,
        &[
            "generate",
            "--out",
            data.to_str().expect("utf-8"),
            "--scale",
            "0.2",
            "--seed",
            "7",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pipeline = pipeline_for(&data);
    let run = townstat(
        &wh,
        &[
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2026-01-15",
        ],
    );
    assert_eq!(
        run.code, 0,
        "no file is rejected whole: {}\n{}",
        run.stdout, run.stderr
    );

    let manifest = std::fs::read_to_string(data.join("_manifest/injected.csv")).expect("manifest");
    let mut reasons: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut warnings: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut duplicates: BTreeMap<String, i64> = BTreeMap::new();
    for row in csv_rows(&manifest) {
        let (file, line, expect) = (row[0].clone(), row[1].clone(), row[3].clone());
        match expect.as_str() {
            "exact_duplicate" => *duplicates.entry(file).or_default() += 1,
            "legacy_division_split" | "division_from_address" | "unlinked_applicant" => {
                warnings.entry((file, line)).or_default().insert(expect);
            }
            _ => {
                reasons.entry((file, line)).or_default().insert(expect);
            }
        }
    }
    assert!(
        reasons.len() > 50,
        "the manifest injects problems: {}",
        reasons.len()
    );

    let found = |query: &str| -> BTreeMap<(String, String), BTreeSet<String>> {
        let mut m: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for row in csv_rows(&sql_csv(&wh, query)) {
            m.entry((rel(&row[0]), row[1].clone()))
                .or_default()
                .insert(row[2].clone());
        }
        m
    };
    let quarantined =
        found("SELECT source_file, row_number, unnest(reasons) AS r FROM quarantine ORDER BY 1, 2");
    assert_eq!(quarantined, reasons, "quarantine = manifest");
    let warned = found(
        "SELECT source_file, row_number, unnest(warnings) AS w FROM ingest_warning ORDER BY 1, 2",
    );
    assert_eq!(warned, warnings, "ingest_warning = manifest");
    let dups: BTreeMap<String, i64> = csv_rows(&sql_csv(
        &wh,
        "SELECT source_file, rows_duplicate FROM ingest_run WHERE rows_duplicate > 0",
    ))
    .into_iter()
    .map(|r| (rel(&r[0]), r[1].parse().expect("count")))
    .collect();
    assert_eq!(
        dups, duplicates,
        "exact duplicates where the generator put them"
    );
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT count(*) AS bad FROM ingest_run WHERE rows_read <> rows_loaded + rows_duplicate + rows_quarantined"
        ),
        "bad\n0\n"
    );
    // Bounded: under an 8 MiB query memory limit a 3-million-row sort spills to disk
    // (a sample this small has no table that large) and returns the same rows.
    let q = "SELECT value FROM generate_series(1, 3000000) ORDER BY value DESC";
    let limited = |sql: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_townstat"))
            .env("TOWNSTAT_WAREHOUSE", &wh)
            .env("TOWNSTAT_MEMORY_LIMIT", "8MiB")
            .args(["sql", sql, "--format", "csv"])
            .output()
            .expect("sql")
    };
    let bounded = limited(q);
    assert!(
        bounded.status.success(),
        "{}",
        String::from_utf8_lossy(&bounded.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&bounded.stdout), sql_csv(&wh, q));
    let plan = limited(&format!("EXPLAIN ANALYZE {q}"));
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("spill_count=") && !plan.contains("spill_count=0,"),
        "the sort spilled: {plan}"
    );

    // Every registry town has members and figures.
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT count(DISTINCT town_id) AS n FROM town_membership WHERE year = 2025"
        ),
        "n\n10\n"
    );
}
