//! The marts' declared tests gate the run (schemas/marts.toml): a mart corrupted on
//! purpose (`TOWNSTAT_FAULT_MART`) fails its test, the run exits 1, readers keep the
//! previous run's figures, and `test_failure` names the failing rows; a warn-level
//! failure is recorded and the run publishes.

use std::path::Path;

use crate::fault::{dataset, second_day};
use crate::support::{sql_csv, townstat, townstat_env};

const FIGURES: &str = "SELECT town_id, year, revenue, financing_total, entities_end \
                       FROM town_year ORDER BY town_id, year";

fn run_with_fault(wh: &Path, pipeline: &Path, fault: &str) -> crate::support::Output {
    townstat_env(
        wh,
        &[("TOWNSTAT_FAULT_MART", fault)],
        &[
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ],
    )
}

fn last_run(wh: &Path) -> String {
    sql_csv(
        wh,
        "SELECT run_id || ' ' || status AS r FROM run ORDER BY finished_at DESC LIMIT 1",
    )
    .lines()
    .nth(1)
    .expect("a run")
    .to_string()
}

#[test]
fn failing_mart_tests_stop_the_run_and_keep_the_previous_figures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let pipeline = dataset(&data);
    let wh = tmp.path().join("wh");
    let first = run_with_fault(&wh, &pipeline, "");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("tests of the marts: ") && !first.stdout.contains("FAIL"),
        "{}",
        first.stdout
    );
    let day_one = sql_csv(&wh, FIGURES);
    let passed = sql_csv(
        &wh,
        "SELECT count(*) AS n FROM test_result WHERE status NOT IN ('pass', 'absent')",
    );
    assert_eq!(passed, "n\n0\n", "the hand-made dataset passes every test");
    // The second day changes E1's 2023 revenue and a deal: figures that a published
    // run would show.
    second_day(&data);
    let cases = [
        ("duplicate_key", "town_year.unique", "\"duplicates\":2"),
        (
            "null",
            "town_year.not_null.county_code",
            "\"county_code\":null",
        ),
        (
            "unknown_tier",
            "town_year.accepted_values.scale_tier",
            "\"scale_tier\":\"999亿级\"",
        ),
        (
            "broken_sum",
            "town_year.members_add_up",
            "\"members_revenue\"",
        ),
    ];
    for (fault, test, in_row) in cases {
        let out = run_with_fault(&wh, &pipeline, fault);
        assert_eq!(out.code, 1, "{fault}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&format!("FAIL {test}: 1 failing row")),
            "{fault}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("nothing was published"),
            "{}",
            out.stderr
        );
        // Readers see the first day's figures, not the second day's.
        assert_eq!(sql_csv(&wh, FIGURES), day_one, "{fault}");
        let last = last_run(&wh);
        let (run_id, status) = last.split_once(' ').expect("id status");
        assert_eq!(status, "failed", "{fault}");
        // The failing rows are queryable, with the failed run's record.
        let rows = sql_csv(
            &wh,
            &format!(
                "SELECT test, severity, row FROM test_failure WHERE run_id = '{run_id}' \
                 AND test = '{test}' ORDER BY row_number"
            ),
        );
        let lines: Vec<&str> = rows.lines().skip(1).collect();
        assert_eq!(lines.len(), 1, "{fault}: {rows}");
        assert!(lines[0].starts_with(&format!("{test},error,")), "{rows}");
        assert!(
            lines[0].replace("\"\"", "\"").contains(in_row),
            "{fault}: {rows}"
        );
        let result = sql_csv(
            &wh,
            &format!(
                "SELECT status, failing_rows FROM test_result WHERE run_id = '{run_id}' \
                 AND test = '{test}'"
            ),
        );
        assert_eq!(result, "status,failing_rows\nfail,1\n", "{fault}");
        // Nothing else of the failed run is visible: no quarantine, no file records.
        assert_eq!(
            sql_csv(
                &wh,
                &format!("SELECT count(*) AS n FROM ingest_run WHERE run_id = '{run_id}'")
            ),
            "n\n0\n"
        );
        // The failed run's tables are the previous run's: its tests pass there.
        let again = townstat(&wh, &["test", "--run", run_id]);
        assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    }
    // Four failed runs, and their records, did not keep the files from loading: the
    // next run reads them again and publishes the second day.
    // (The second day alone already makes 乙镇's 2023 revenue 10.7 times 2022's, past
    // the warning's bound of 10: that row warns too, with the injected one.)
    let warned = run_with_fault(&wh, &pipeline, "warn");
    assert_eq!(warned.code, 0, "{}\n{}", warned.stdout, warned.stderr);
    assert!(
        warned
            .stdout
            .contains("WARN town_year_yoy.range.revenue_yoy: 2 failing rows"),
        "{}",
        warned.stdout
    );
    assert_ne!(
        sql_csv(&wh, FIGURES),
        day_one,
        "the second day is published"
    );
    let last = last_run(&wh);
    let (run_id, status) = last.split_once(' ').expect("id status");
    assert_eq!(status, "succeeded");
    assert_eq!(
        sql_csv(
            &wh,
            &format!(
                "SELECT test, status FROM test_result WHERE run_id = '{run_id}' \
                 AND status NOT IN ('pass', 'absent') ORDER BY test"
            )
        ),
        "test,status\ntown_year_yoy.range.revenue_yoy,warn\n"
    );
    // A warn-level failure is published with the run: `townstat test` on it finds the
    // same row again, and still exits 0.
    let tested = townstat(&wh, &["test"]);
    assert_eq!(tested.code, 0, "{}\n{}", tested.stdout, tested.stderr);
    assert!(
        tested
            .stdout
            .contains("WARN town_year_yoy.range.revenue_yoy: 2 failing rows"),
        "{}",
        tested.stdout
    );
    let injected = sql_csv(
        &wh,
        &format!(
            "SELECT count(*) AS n FROM test_failure WHERE run_id = '{run_id}' \
             AND row LIKE '%\"revenue_yoy\":50.0%'"
        ),
    );
    assert_eq!(injected, "n\n1\n");
    assert_eq!(
        sql_csv(&wh, "SELECT count(*) AS n FROM run WHERE status = 'failed'"),
        "n\n4\n"
    );
}

/// The raw records `townstat explain --format csv` lists: (table, file name, row).
fn explained(wh: &Path, column: &str) -> Vec<(String, String, u64)> {
    let out = townstat(
        wh,
        &[
            "explain",
            "town_year",
            column,
            "alpha",
            "2023",
            "--format",
            "csv",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut rows: Vec<(String, String, u64)> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ',').collect();
            let file = Path::new(f[1])
                .file_name()
                .expect("file")
                .to_string_lossy()
                .into_owned();
            (f[0].to_string(), file, f[2].parse().expect("row"))
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn explain_lists_the_raw_records_behind_a_figure() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pipeline = dataset(&tmp.path().join("data"));
    let wh = tmp.path().join("wh");
    // No fault: an ordinary run.
    let run = run_with_fault(&wh, &pipeline, "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = |list: &[(&str, &str, u64)]| -> Vec<(String, String, u64)> {
        list.iter()
            .map(|(t, f, r)| (t.to_string(), f.to_string(), *r))
            .collect()
    };
    // A sum: 甲镇's 2023 revenue is E1's 3亿 and E2's 1亿 (annual.csv lines 2 and 3);
    // E3's return has no revenue and is not behind the figure.
    assert_eq!(
        explained(&wh, "revenue"),
        rows(&[
            ("enterprise_annual", "annual.csv", 2),
            ("enterprise_annual", "annual.csv", 3)
        ])
    );
    // A count of distinct firms: E1 and E2 had deals in 2023 (financing.csv lines 2, 4,
    // 5 and 6; line 3 is E1's 2022 listing).
    assert_eq!(
        explained(&wh, "financed_enterprises"),
        rows(&[
            ("financing", "financing.csv", 2),
            ("financing", "financing.csv", 4),
            ("financing", "financing.csv", 5),
            ("financing", "financing.csv", 6)
        ])
    );
    // A ratio: R&D intensity = Σ rd_expense / Σ revenue over E1 (both), E2 (revenue)
    // and E3 (R&D only): annual.csv lines 2, 3 and 4.
    assert_eq!(
        explained(&wh, "rd_intensity"),
        rows(&[
            ("enterprise_annual", "annual.csv", 2),
            ("enterprise_annual", "annual.csv", 3),
            ("enterprise_annual", "annual.csv", 4)
        ])
    );
    // For a person: the figure, its definition and the SQL steps it passed through.
    let out = townstat(&wh, &["explain", "town_year", "revenue", "alpha", "2023"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for expected in [
        "town_year.revenue for town_id = alpha, year = 2023 = 400000000.00",
        "营业收入(元)",
        "单位 unit: 元",
        "staging/stg_enterprise_year.sql",
        "intermediate/int_town_member.sql",
        "intermediate/int_group_sums.sql",
        "marts/town_year.sql",
        "members of alpha in 2023 with a non-zero revenue (town_member_year): 2",
    ] {
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    // A key that names no row, and a mart that is not keyed by town, are bad usage.
    let missing = townstat(&wh, &["explain", "town_year", "revenue", "alpha", "1999"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("0 rows"), "{}", missing.stderr);
    let city = townstat(&wh, &["explain", "city_year", "revenue", "2023"]);
    assert_eq!(city.code, 2, "{}", city.stderr);
    assert!(
        city.stderr.contains("members are stored for towns only"),
        "{}",
        city.stderr
    );
}
