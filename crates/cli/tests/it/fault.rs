//! Crash safety: a run killed with SIGKILL at each named commit point leaves readers on
//! the previous committed state, and the next run converges to exactly the figures of
//! an uninterrupted run. A second run started while one holds the lock exits at once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::{repo, sql_csv, townstat};

/// A copy of the slt dataset whose pipeline points at it, so a test can change files.
pub fn dataset(dir: &Path) -> PathBuf {
    let src = repo().join("tests/slt/data");
    std::fs::create_dir_all(dir).expect("mkdir");
    for entry in std::fs::read_dir(&src).expect("data") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
    }
    let pipeline = std::fs::read_to_string(dir.join("pipeline.toml"))
        .expect("pipeline")
        .replace(
            "../../../pipelines/enums.toml",
            &repo().join("pipelines/enums.toml").display().to_string(),
        );
    std::fs::write(dir.join("pipeline.toml"), pipeline).expect("write");
    dir.join("pipeline.toml")
}

/// The second day's files: E1's 2023 revenue corrected to 4亿, a new deal, and P1
/// corrected to one applicant (the university removed).
pub(crate) fn second_day(dir: &Path) {
    let patents = std::fs::read_to_string(dir.join("patent.csv")).expect("patent");
    std::fs::write(
        dir.join("patent.csv"),
        patents.replacen("甲石墨有限公司;太原理工大学", "甲石墨有限公司", 1),
    )
    .expect("write");
    let annual = std::fs::read_to_string(dir.join("annual.csv")).expect("annual");
    std::fs::write(
        dir.join("annual.csv"),
        annual.replacen(",2023,3亿,", ",2023,4亿,", 1),
    )
    .expect("write");
    let fin = std::fs::read_to_string(dir.join("financing.csv")).expect("financing");
    let e1 = fin
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .next()
        .expect("uscc")
        .to_string();
    std::fs::write(
        dir.join("financing.csv"),
        format!("{fin}{e1},2024-03-01,债券,3000万元,大同银行,\n"),
    )
    .expect("write");
}

const FIGURES: &str = "SELECT town_id, year, revenue, financing_total, bond_total, entities_end, \
                       patents_granted_frac \
                       FROM town_year ORDER BY town_id, year";

fn spawn_paused(wh: &Path, pipeline: &Path, point: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", wh)
        .env("TOWNSTAT_PAUSE_AT", point)
        .args([
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
}

fn wait_for(marker: &Path, child: &mut Child) {
    let start = Instant::now();
    while !marker.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) before reaching {}",
                marker.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never reached {}",
            marker.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_runs_are_invisible_and_the_next_run_converges() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The reference: day one, then day two, uninterrupted.
    let data = tmp.path().join("ref-data");
    let pipeline = dataset(&data);
    let reference = tmp.path().join("ref-wh");
    assert_eq!(
        townstat(
            &reference,
            &[
                "run",
                pipeline.to_str().expect("utf-8"),
                "--as-of",
                "2024-06-30"
            ]
        )
        .code,
        0
    );
    let day_one = sql_csv(&reference, FIGURES);
    second_day(&data);
    assert_eq!(
        townstat(
            &reference,
            &[
                "run",
                pipeline.to_str().expect("utf-8"),
                "--as-of",
                "2024-06-30"
            ]
        )
        .code,
        0
    );
    let day_two = sql_csv(&reference, FIGURES);
    assert_ne!(day_one, day_two, "day two changes figures");

    for point in [
        "after_ingest",
        "after_source_tables",
        "before_marts",
        "after_marts",
        "before_run_record",
        "after_run_record",
        "during_export",
    ] {
        let data = tmp.path().join(format!("data-{point}"));
        let pipeline = dataset(&data);
        let wh = tmp.path().join(format!("wh-{point}"));
        assert_eq!(
            townstat(
                &wh,
                &[
                    "run",
                    pipeline.to_str().expect("utf-8"),
                    "--as-of",
                    "2024-06-30"
                ]
            )
            .code,
            0
        );
        let export_before = std::fs::read_link(wh.join("export")).expect("export link");
        second_day(&data);
        let mut child = spawn_paused(&wh, &pipeline, point);
        wait_for(&wh.join(format!("_paused_at_{point}")), &mut child);
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        std::fs::remove_file(wh.join(format!("_paused_at_{point}"))).expect("marker");

        let seen = sql_csv(&wh, FIGURES);
        if point == "after_run_record" || point == "during_export" {
            // The run had committed: readers see it; the export is still the old one
            // until the next run republishes.
            assert_eq!(seen, day_two, "killed at {point}");
            assert_eq!(
                std::fs::read_link(wh.join("export")).expect("link"),
                export_before
            );
        } else {
            assert_eq!(
                seen, day_one,
                "killed at {point}: readers still see day one"
            );
        }
        // The next run completes the work (the lock of the dead run is taken over).
        let next = townstat(
            &wh,
            &[
                "run",
                pipeline.to_str().expect("utf-8"),
                "--as-of",
                "2024-06-30",
            ],
        );
        assert_eq!(next.code, 0, "after {point}: {}", next.stderr);
        assert_eq!(sql_csv(&wh, FIGURES), day_two, "converged after {point}");
        let dup = sql_csv(
            &wh,
            "SELECT count(*) AS n FROM (SELECT deal_id FROM financing GROUP BY deal_id HAVING count(*) > 1)",
        );
        assert_eq!(dup, "n\n0\n", "no duplicate keys after {point}");
        // Nothing the killed run appended survives into the next committed state.
        for table in ["ingest_run", "quarantine", "ingest_warning"] {
            let orphans = sql_csv(
                &wh,
                &format!(
                    "SELECT count(*) AS n FROM {table} t WHERE NOT EXISTS \
                     (SELECT 1 FROM run r WHERE r.run_id = t.run_id)"
                ),
            );
            assert_eq!(
                orphans, "n\n0\n",
                "rows of the killed run in {table} after {point}"
            );
        }
    }
}

#[test]
fn a_second_concurrent_run_exits_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pipeline = dataset(&tmp.path().join("data"));
    let wh = tmp.path().join("wh");
    let mut first = spawn_paused(&wh, &pipeline, "after_ingest");
    wait_for(&wh.join("_paused_at_after_ingest"), &mut first);
    let started = Instant::now();
    let second = townstat(
        &wh,
        &[
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ],
    );
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("another townstat run holds"),
        "{}",
        second.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it did not wait for the lock"
    );
    first.kill().expect("kill");
    first.wait().expect("reaped");
}

#[test]
fn maintenance_keeps_every_recorded_vintage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let pipeline = dataset(&data);
    let wh = tmp.path().join("wh");
    let p = pipeline.to_str().expect("utf-8");
    assert_eq!(townstat(&wh, &["run", p, "--as-of", "2024-06-30"]).code, 0);
    let day_one = sql_csv(&wh, FIGURES);
    second_day(&data);
    assert_eq!(townstat(&wh, &["run", p, "--as-of", "2024-06-30"]).code, 0);
    let day_two = sql_csv(&wh, FIGURES);

    // P1 lost its second applicant: its old position 2 is gone, and alpha's 2023
    // fractional grants are 1/1 (P1) + 1/1 (P3).
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT position, applicant_name FROM patent_applicant WHERE application_no = '202310000001.5'"
        ),
        "position,applicant_name\n1,甲石墨有限公司\n"
    );
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT patents_granted_frac FROM town_year WHERE town_id = 'alpha' AND year = 2023"
        ),
        "patents_granted_frac\n2.0\n"
    );

    let m = townstat(&wh, &["maintain"]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stdout.contains("town_year"), "{}", m.stdout);
    let v1 = townstat(&wh, &["sql", FIGURES, "--format", "csv", "--version", "1"]);
    assert_eq!(v1.stdout, day_one, "run 1 is still readable: {}", v1.stderr);
    assert_eq!(sql_csv(&wh, FIGURES), day_two);

    // Keeping only the last run frees the files only run 1 needed.
    let m = townstat(&wh, &["maintain", "--keep-runs", "1"]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let vacuumed: u64 = m
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert!(vacuumed > 0, "{}", m.stdout);
    assert_eq!(sql_csv(&wh, FIGURES), day_two);
    // And the next run works on the maintained tables.
    assert_eq!(
        townstat(&wh, &["run", p, "--as-of", "2024-06-30", "--force"]).code,
        0
    );
    assert_eq!(sql_csv(&wh, FIGURES), day_two);
}

/// Every file under a folder with its bytes: a warehouse "byte for byte".
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let p = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                stack.push(p.clone());
                out.insert(p, b"<dir>".to_vec());
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).expect("link");
                out.insert(p, target.display().to_string().into_bytes());
            } else {
                out.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// In a TOML file, gives the first `key = value` line (`prefix` is `key = `) the value
/// `bad` instead.
fn rename_first(path: &Path, prefix: &str, bad: &str) {
    let text = std::fs::read_to_string(path).expect("config file");
    let first = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("a line {prefix}… in {}", path.display()))
        .to_string();
    std::fs::write(path, text.replacen(&first, &format!("{prefix}{bad}"), 1)).expect("write");
}

/// Breaks a copy of the slt pipeline in one way; returns what the error must name.
fn break_config(dir: &Path, how: &str) -> &'static str {
    let pipeline = dir.join("pipeline.toml");
    let edit = |from: &str, to: &str| {
        let text = std::fs::read_to_string(&pipeline).expect("pipeline");
        assert!(text.contains(from), "{from} in the pipeline");
        std::fs::write(&pipeline, text.replacen(from, to, 1)).expect("write");
    };
    match how {
        "missing evaluation.toml" => {
            std::fs::remove_file(dir.join("evaluation.toml")).expect("rm");
            "evaluation.toml"
        }
        "missing targets.toml" => {
            std::fs::remove_file(dir.join("targets.toml")).expect("rm");
            "targets.toml"
        }
        "an indicator that is no column" => {
            rename_first(&dir.join("evaluation.toml"), "indicator = ", "\"revenu\"");
            "revenu"
        }
        "a target metric that is no column" => {
            rename_first(&dir.join("targets.toml"), "metric = ", "\"entities_ned\"");
            "entities_ned"
        }
        "missing enums file" => {
            edit("enums = \"", "enums = \"nowhere/");
            "nowhere"
        }
        "missing towns file" => {
            std::fs::remove_file(dir.join("towns.csv")).expect("rm");
            "towns.csv"
        }
        "missing roster" => {
            std::fs::remove_file(dir.join("roster_gamma.csv")).expect("rm");
            "roster_gamma.csv"
        }
        "a glob into a missing folder" => {
            edit("glob = [\"financing.csv\"]", "glob = [\"finance/*.csv\"]");
            "finance"
        }
        "a registry event out of order" => {
            // Found beside the registry without a pipeline key.
            std::fs::write(
                dir.join("town_events.csv"),
                "town_id,event,level,effective_on,document_no\n\
                 alpha,designated,city,2022-03-01,\n\
                 alpha,withdrawn,,2021-05-01,\n",
            )
            .expect("write");
            "town_events.csv: line 3: alpha: withdrawn on 2021-05-01 before it was designated"
        }
        "an unknown level in a registry event" => {
            std::fs::write(
                dir.join("events.csv"),
                "town_id,event,level,effective_on,document_no\n\
                 alpha,认定,县级,2022-03-01,\n",
            )
            .expect("write");
            edit(
                "towns = \"towns.csv\"",
                "towns = \"towns.csv\"\ntown_events = \"events.csv\"",
            );
            "events.csv: line 2: level \"县级\""
        }
        "a size class table with a gap" => {
            std::fs::write(
                dir.join("sizes.csv"),
                "sector,industry_prefixes,indicator,class,lower,upper,unit\n\
                 零售业,52,revenue,微型,0,100,万元\n\
                 零售业,52,revenue,小型,100,500,万元\n\
                 零售业,52,revenue,中型,600,20000,万元\n\
                 零售业,52,revenue,大型,20000,,万元\n",
            )
            .expect("write");
            edit(
                "towns = \"towns.csv\"",
                "towns = \"towns.csv\"\nsize_classes = \"sizes.csv\"",
            );
            "sizes.csv: line 4: 零售业 revenue: 中型 starts at 600 but 小型 ends at 500 (a gap)"
        }
        other => panic!("no breakage {other}"),
    }
}

const BREAKAGES: [&str; 11] = [
    "missing evaluation.toml",
    "missing targets.toml",
    "an indicator that is no column",
    "a target metric that is no column",
    "missing enums file",
    "missing towns file",
    "missing roster",
    "a glob into a missing folder",
    "a registry event out of order",
    "an unknown level in a registry event",
    "a size class table with a gap",
];

#[test]
fn a_config_error_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A committed warehouse the broken runs must leave byte for byte as it is.
    let good = dataset(&tmp.path().join("good"));
    let wh = tmp.path().join("wh");
    let first = townstat(
        &wh,
        &[
            "run",
            good.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = tree(&wh);
    for (i, how) in BREAKAGES.iter().enumerate() {
        let data = tmp.path().join(format!("broken-{i}"));
        let pipeline = dataset(&data);
        let named = break_config(&data, how);
        let p = pipeline.to_str().expect("utf-8");
        // Into the committed warehouse: nothing changes, not even the lock file.
        let out = townstat(&wh, &["run", p, "--as-of", "2024-06-30"]);
        assert_eq!(out.code, 2, "{how}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(named), "{how}: {}", out.stderr);
        assert!(tree(&wh) == before, "{how}: the warehouse changed");
        if how.contains("registry event") || how.contains("size class") {
            // `townstat check` names the same file and line.
            let check = townstat(&wh, &["check", p]);
            assert_ne!(check.code, 0, "{how}");
            assert!(
                format!("{}{}", check.stdout, check.stderr).contains(named),
                "{how}: {}{}",
                check.stdout,
                check.stderr
            );
        }
        // Into a warehouse that does not exist: it is not created.
        let fresh = tmp.path().join(format!("fresh-{i}"));
        let out = townstat(&fresh, &["run", p, "--as-of", "2024-06-30"]);
        assert_eq!(out.code, 2, "{how}: {}", out.stderr);
        assert!(!fresh.exists(), "{how}: the warehouse folder was created");
    }
}

/// Runs a Python script of tests/python on a warehouse; its JSON output. The
/// interpreter is `python3` with tests/python/requirements.txt, or `TOWNSTAT_PYTHON`.
fn python_json(script: &Path, wh: &Path) -> serde_json::Value {
    let python = std::env::var("TOWNSTAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(script)
        .arg(wh)
        .output()
        .unwrap_or_else(|e| panic!("{python} runs (tests/python/requirements.txt): {e}"));
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Row counts of every table as outside readers see them (latest versions), by reader.
fn outside_counts(
    wh: &Path,
) -> (
    std::collections::BTreeMap<String, serde_json::Value>,
    String,
) {
    let v = python_json(&repo().join("tests/python/outside_readers.py"), wh);
    let tables = v["tables"]
        .as_object()
        .expect("tables")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (tables, v["delta_scan"].as_str().unwrap_or("?").to_string())
}

/// Row counts of every table at the last committed run, as `townstat sql` reads them.
fn committed_counts(wh: &Path, tables: &[String]) -> std::collections::BTreeMap<String, i64> {
    tables
        .iter()
        .map(|t| {
            let csv = sql_csv(wh, &format!("SELECT count(*) AS n FROM {t}"));
            let n = csv
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or_else(|| panic!("count of {t}: {csv}"));
            (t.clone(), n)
        })
        .collect()
}

/// Asserts that every outside reader sees exactly the committed counts. DuckDB's
/// `delta_scan` takes part when its extension loads (it needs network access, or a
/// `TOWNSTAT_PYTHON` whose DuckDB has the `duckdb-ext-delta` wheel: tests/run.sh makes
/// one and sets `TOWNSTAT_REQUIRE_DELTA_SCAN=1`, under which a missing extension
/// fails the test); in a plain `cargo test` without it, the test says so on stderr
/// and the three other readers still must agree.
fn assert_outside_sees(wh: &Path, expected: &std::collections::BTreeMap<String, i64>, when: &str) {
    let (seen, scan) = outside_counts(wh);
    if std::env::var_os("TOWNSTAT_REQUIRE_DELTA_SCAN").is_some() {
        assert!(
            scan.starts_with("loaded"),
            "{when}: DuckDB delta_scan is required here (TOWNSTAT_REQUIRE_DELTA_SCAN) but {scan}"
        );
    }
    let names: Vec<&String> = seen.keys().collect();
    let wanted: Vec<&String> = expected.keys().collect();
    assert_eq!(names, wanted, "{when}: the tables outside readers find");
    for (table, n) in expected {
        for reader in ["deltalake", "polars", "duckdb", "delta_scan"] {
            let got = &seen[table][reader];
            if reader == "delta_scan" && !scan.starts_with("loaded") {
                continue;
            }
            assert_eq!(
                got.as_i64(),
                Some(*n),
                "{when}: {reader} reads {got} rows of {table}, the last committed run has {n}"
            );
        }
    }
    if !scan.starts_with("loaded") {
        eprintln!("{when}: DuckDB delta_scan {scan}");
    }
}

fn fail_at(wh: &Path, pipeline: &Path, point: &str) -> crate::support::Output {
    crate::support::townstat_env(
        wh,
        &[("TOWNSTAT_FAIL_AT", point)],
        &[
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ],
    )
}

#[test]
fn outside_readers_see_only_committed_runs_after_failures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let pipeline = dataset(&data);
    let p = pipeline.to_str().expect("utf-8");
    let wh = tmp.path().join("wh");
    assert_eq!(townstat(&wh, &["run", p, "--as-of", "2024-06-30"]).code, 0);
    let mut tables: Vec<String> = std::fs::read_dir(wh.join("tables"))
        .expect("tables")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    tables.sort();
    let day_one = committed_counts(&wh, &tables);
    assert_outside_sees(&wh, &day_one, "after day one");
    second_day(&data);

    // The error path: the failed run restores what it wrote before it ends.
    for point in [
        "after_ingest",
        "after_source_tables",
        "before_marts",
        "after_marts",
        "before_run_record",
    ] {
        let out = fail_at(&wh, &pipeline, point);
        assert_eq!(out.code, 1, "failed at {point}: {}", out.stderr);
        assert!(out.stderr.contains(point), "{}", out.stderr);
        assert!(!wh.join("_run.pending").exists(), "marker left at {point}");
        assert_eq!(
            committed_counts(&wh, &tables),
            day_one,
            "townstat at {point}"
        );
        assert_outside_sees(&wh, &day_one, &format!("failed at {point}"));
    }
    // Out of memory (a hash join's table cannot spill): the run fails, says which
    // setting to change, and restores the source tables it had already merged, as
    // for any other failure after them.
    let out = crate::support::townstat_env(
        &wh,
        &[("TOWNSTAT_MEMORY_LIMIT", "16KiB")],
        &["run", p, "--as-of", "2024-06-30"],
    );
    assert_eq!(out.code, 1, "out of memory: {}", out.stderr);
    assert!(
        out.stderr.contains("Resources exhausted")
            && out.stderr.contains(
                "the run's memory pool is 16 KiB: set TOWNSTAT_MEMORY_LIMIT higher, e.g. 4GiB"
            ),
        "the hint: {}",
        out.stderr
    );
    assert!(!wh.join("_run.pending").exists(), "marker left (memory)");
    assert_eq!(
        committed_counts(&wh, &tables),
        day_one,
        "after out of memory"
    );
    assert_outside_sees(&wh, &day_one, "out of memory in the marts");
    // A configuration error: nothing written at all.
    let broken = tmp.path().join("broken");
    let broken_pipeline = dataset(&broken);
    second_day(&broken);
    break_config(&broken, "missing evaluation.toml");
    let out = townstat(
        &wh,
        &[
            "run",
            broken_pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_outside_sees(&wh, &day_one, "config error");

    // SIGKILL: the dead run cannot restore; `townstat maintain` or the next run's
    // start does, under the lock.
    for (i, point) in [
        "after_source_tables",
        "before_marts",
        "after_marts",
        "before_run_record",
    ]
    .iter()
    .enumerate()
    {
        let mut child = spawn_paused(&wh, &pipeline, point);
        let marker = wh.join(format!("_paused_at_{point}"));
        wait_for(&marker, &mut child);
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        std::fs::remove_file(&marker).expect("marker");
        assert!(wh.join("_run.pending").exists(), "killed at {point}");
        // Before the restore an outside reader does see the dead run's merges:
        // what the restore is for.
        let (seen, _) = outside_counts(&wh);
        assert!(
            tables
                .iter()
                .any(|t| seen[t]["deltalake"].as_i64() != Some(day_one[t])),
            "killed at {point}: nothing uncommitted to see"
        );
        // The recipe of docs/reading.md reads the committed run even now.
        let recipe = python_json(&repo().join("tests/python/reading_recipe.py"), &wh);
        for t in &tables {
            for reader in ["polars", "duckdb"] {
                assert_eq!(
                    recipe[t.as_str()][reader].as_i64(),
                    Some(day_one[t]),
                    "docs/reading.md with {reader}, {t}, killed at {point}"
                );
            }
        }
        if i % 2 == 0 {
            let m = townstat(&wh, &["maintain"]);
            assert_eq!(m.code, 0, "{}", m.stderr);
        } else {
            // The next run restores at its start, then fails before writing.
            let out = fail_at(&wh, &pipeline, "after_ingest");
            assert_eq!(out.code, 1, "{}", out.stderr);
        }
        assert!(!wh.join("_run.pending").exists(), "after {point}");
        assert_eq!(
            committed_counts(&wh, &tables),
            day_one,
            "townstat after {point}"
        );
        assert_outside_sees(&wh, &day_one, &format!("killed at {point}, then restored"));
    }
    // And the next run commits day two, which everyone then reads.
    let out = townstat(&wh, &["run", p, "--as-of", "2024-06-30"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let day_two = committed_counts(&wh, &tables);
    assert_ne!(day_two, day_one);
    assert_outside_sees(&wh, &day_two, "day two");
}

/// `townstat demo ARGS` started in `dir` with no warehouse in the environment, as an
/// installed binary would be; asserts exit 0 and returns standard output.
fn demo_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(dir)
        .env_remove("TOWNSTAT_WAREHOUSE")
        .env_remove("RUST_LOG")
        .arg("demo")
        .args(args)
        .output()
        .expect("townstat runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn demo_runs_outside_the_clone() {
    // An installed binary started in an empty folder: it carries the pipeline.
    let tmp = tempfile::tempdir().expect("tempdir");
    let stdout = demo_in(tmp.path(), &[]);
    assert!(stdout.contains("专业镇"), "{stdout}");
    // A complete example project in ./townstat-demo: nothing else in the folder.
    let project = tmp.path().join("townstat-demo");
    for file in [
        "nightly.toml",
        "enums.toml",
        "evaluation.toml",
        "targets.toml",
    ] {
        assert!(project.join("pipelines").join(file).is_file(), "{file}");
    }
    assert!(project.join("sample-data/raw/towns.csv").is_file());
    let entries: Vec<_> = std::fs::read_dir(tmp.path()).expect("dir").collect();
    assert_eq!(entries.len(), 1, "the demo wrote outside ./townstat-demo");
    let wh = project.join("warehouse");
    assert!(!wh.join("_run.pending").exists());
    // The town table it printed is the committed one.
    let towns = sql_csv(&wh, "SELECT count(*) AS n FROM town_year");
    assert_ne!(towns, "n\n0\n");

    // --dir and --data: the project where asked, the raw files read from --data (a
    // copy of the sample without one file, which must then be missing from the run).
    let data = tmp.path().join("mydata");
    let copy = Command::new("cp")
        .arg("-r")
        .arg(project.join("sample-data/raw"))
        .arg(&data)
        .status()
        .expect("cp");
    assert!(copy.success());
    std::fs::remove_file(data.join("patent/patent_05_api.ndjson")).expect("rm");
    demo_in(tmp.path(), &["--dir", "other", "--data", "mydata"]);
    let files = sql_csv(
        &tmp.path().join("other/warehouse"),
        "SELECT count(*) AS n, count(CASE WHEN source_file LIKE '%mydata%' THEN 1 END) AS mine, \
         count(CASE WHEN source_file LIKE '%patent_05%' THEN 1 END) AS removed FROM ingest_run",
    );
    let counts: Vec<&str> = files.lines().nth(1).expect("row").split(',').collect();
    assert_eq!(counts[0], counts[1], "every file from --data: {files}");
    assert_eq!(counts[2], "0", "{files}");

    // The registry's dated events (sample-data/examples/town_events.csv) put beside the
    // registry are read without a setting: 云冈 upgraded to provincial on 2025-06-18
    // counts as provincial in 2025, 云州纸业 withdrawn on 2025-11-30 is no longer
    // designated in 2025 nor evaluated; 2024 is as before.
    let towns = |wh: &Path| {
        sql_csv(
            wh,
            "SELECT c.year, c.towns_total, c.towns_provincial, c.towns_city, \
                    (SELECT count(*) FROM town_evaluation e WHERE e.year = c.year) AS evaluated \
             FROM city_year c WHERE c.year IN (2024, 2025) ORDER BY c.year",
        )
    };
    assert_eq!(
        towns(&tmp.path().join("other/warehouse")),
        "year,towns_total,towns_provincial,towns_city,evaluated\n2024,10,3,7,10\n2025,10,3,7,10\n"
    );
    std::fs::copy(
        repo().join("sample-data/examples/town_events.csv"),
        data.join("town_events.csv"),
    )
    .expect("copy the events");
    demo_in(tmp.path(), &["--dir", "third", "--data", "mydata"]);
    let wh3 = tmp.path().join("third/warehouse");
    assert_eq!(
        towns(&wh3),
        "year,towns_total,towns_provincial,towns_city,evaluated\n2024,10,3,7,10\n2025,9,4,5,9\n"
    );
    assert_eq!(
        sql_csv(
            &wh3,
            "SELECT town_id, status, level, event FROM town_history \
             WHERE origin = 'events' ORDER BY town_id, valid_from",
        ),
        "town_id,status,level,event\n\
         yungang_coal_machinery,applied,city,applied\n\
         yungang_coal_machinery,designated,city,designated\n\
         yungang_coal_machinery,designated,provincial,upgraded\n\
         yunzhou_paper,designated,city,designated\n\
         yunzhou_paper,withdrawn,city,withdrawn\n"
    );

    // A pipelines/ folder an earlier demo left half-written (nightly.toml and
    // enums.toml only) is completed, and the demo runs.
    let again = tempfile::tempdir().expect("tempdir");
    let dir = again.path().join("pipelines");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for file in ["nightly.toml", "enums.toml"] {
        std::fs::copy(repo().join("pipelines").join(file), dir.join(file)).expect("copy");
    }
    demo_in(again.path(), &[]);
    assert!(dir.join("evaluation.toml").is_file());
}

/// A warehouse written by an older release, whose tables carry other labels (the
/// Chinese `comment` of each field, edited in `schemas/` since): the next run must
/// still commit. delta-rs refuses a batch whose field metadata differs from the
/// table's, so the writes take the stored labels (`Warehouse::aligned`).
#[test]
fn a_warehouse_with_older_labels_takes_the_next_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pipeline = dataset(&tmp.path().join("data"));
    let p = pipeline.to_str().expect("utf-8");
    let wh = tmp.path().join("wh");
    assert_eq!(townstat(&wh, &["run", p, "--as-of", "2024-06-30"]).code, 0);
    let figures = sql_csv(&wh, FIGURES);
    // Every label of every table as an older release would have written it.
    let mut edited = 0;
    for table in std::fs::read_dir(wh.join("tables")).expect("tables") {
        let log = table.expect("table").path().join("_delta_log");
        for entry in std::fs::read_dir(&log).expect("log") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("read");
                if text.contains("\\\"comment\\\":\\\"") {
                    let older = text.replace("\\\"comment\\\":\\\"", "\\\"comment\\\":\\\"旧版 ");
                    std::fs::write(&path, older).expect("write");
                    edited += 1;
                }
            }
        }
    }
    assert!(edited > 10, "labels found in {edited} logs");
    let again = townstat(&wh, &["run", p, "--as-of", "2024-06-30", "--force"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(sql_csv(&wh, FIGURES), figures);
    assert_eq!(
        sql_csv(&wh, "SELECT count(*) AS n FROM run"),
        "n\n2\n",
        "both runs committed"
    );
}
