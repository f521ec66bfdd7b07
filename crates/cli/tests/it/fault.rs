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
fn second_day(dir: &Path) {
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
