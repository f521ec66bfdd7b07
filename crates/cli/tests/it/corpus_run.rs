//! The bad-input corpus through the real binary: exit status 3 (files rejected whole),
//! the printed report, the run record, quarantine and time travel to a run.

use crate::support::{mask_run_ids, snapshot, sql_csv, townstat};

#[test]
fn corpus_run_reports_rejects_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let first = townstat(
        &wh,
        &["run", "tests/corpus/pipeline.toml", "--as-of", "2026-01-15"],
    );
    assert_eq!(
        first.code, 3,
        "some files are rejected whole: {}",
        first.stderr
    );
    snapshot("corpus_run.txt", &mask_run_ids(&first.stdout));

    // Every file accounted for, in the warehouse too.
    let identity = sql_csv(
        &wh,
        "SELECT count(*) AS bad FROM ingest_run \
         WHERE rows_read <> rows_loaded + rows_duplicate + rows_quarantined",
    );
    assert_eq!(identity, "bad\n0\n");
    let rejected = sql_csv(
        &wh,
        "SELECT count(*) AS n FROM ingest_run WHERE status = 'rejected' AND rows_read = 0",
    );
    assert_eq!(rejected, "n\n6\n");
    let reasons = sql_csv(
        &wh,
        "SELECT r AS reason, count(*) AS n FROM (SELECT unnest(reasons) AS r FROM quarantine) \
         GROUP BY r ORDER BY r",
    );
    snapshot("corpus_reasons.csv", &reasons);
    let money = sql_csv(
        &wh,
        "SELECT name, registered_capital FROM enterprise WHERE registered_capital IS NOT NULL ORDER BY uscc",
    );
    snapshot("corpus_enterprise_capital.csv", &money);

    // The second run over the same files skips the loaded ones (a file rejected whole
    // is read, and rejected, again: it still needs fixing) and changes no figure.
    let second = townstat(
        &wh,
        &["run", "tests/corpus/pipeline.toml", "--as-of", "2026-01-15"],
    );
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert_eq!(
        second.stdout.matches(" skipped ").count(),
        14,
        "{}",
        second.stdout
    );
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT name, registered_capital FROM enterprise WHERE registered_capital IS NOT NULL ORDER BY uscc"
        ),
        money
    );
    let counts = "SELECT (SELECT count(*) FROM enterprise) AS e, (SELECT count(*) FROM patent_applicant) AS a, \
                  (SELECT count(*) FROM financing) AS f";
    let after_second = sql_csv(&wh, counts);

    // --force re-reads: MERGE by key leaves the same rows.
    let forced = townstat(
        &wh,
        &[
            "run",
            "tests/corpus/pipeline.toml",
            "--as-of",
            "2026-01-15",
            "--force",
        ],
    );
    assert_eq!(forced.code, 3, "{}", forced.stderr);
    assert_eq!(sql_csv(&wh, counts), after_second);
    let dup_keys = sql_csv(
        &wh,
        "SELECT count(*) AS n FROM (SELECT uscc FROM enterprise GROUP BY uscc HAVING count(*) > 1)",
    );
    assert_eq!(dup_keys, "n\n0\n");

    // Three runs are recorded; the first can be queried as it was.
    let runs = townstat(&wh, &["runs"]);
    assert_eq!(runs.code, 0, "{}", runs.stderr);
    assert_eq!(runs.stdout.matches("partial").count(), 3, "{}", runs.stdout);
    let first_id = sql_csv(&wh, "SELECT run_id FROM run ORDER BY started_at LIMIT 1");
    let first_id = first_id.lines().nth(1).expect("a run").to_string();
    let as_then = townstat(
        &wh,
        &[
            "sql",
            "SELECT count(*) AS n FROM ingest_run",
            "--format",
            "csv",
            "--run",
            &first_id,
        ],
    );
    assert_eq!(as_then.code, 0, "{}", as_then.stderr);
    assert_eq!(as_then.stdout, "n\n20\n");

    // The same vintage by sequence number and by time; the run record as it was.
    let by_number = townstat(
        &wh,
        &[
            "sql",
            "SELECT (SELECT count(*) FROM ingest_run) AS files, (SELECT count(*) FROM run) AS runs",
            "--format",
            "csv",
            "--version",
            "1",
        ],
    );
    assert_eq!(
        by_number.stdout, "files,runs\n20,1\n",
        "{}",
        by_number.stderr
    );
    let by_time = townstat(
        &wh,
        &[
            "sql",
            "SELECT count(*) AS runs FROM run",
            "--format",
            "csv",
            "--as-of",
            "2999-01-01",
        ],
    );
    assert_eq!(by_time.stdout, "runs\n3\n", "{}", by_time.stderr);
    let too_early = townstat(&wh, &["sql", "SELECT 1", "--as-of", "2000-01-01"]);
    assert_eq!(too_early.code, 1);
    assert!(
        too_early
            .stderr
            .contains("no run was committed by that time"),
        "{}",
        too_early.stderr
    );

    let q = townstat(&wh, &["quarantine", "--run", &first_id]);
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert!(q.stdout.contains("conflicting_duplicate"), "{}", q.stdout);
}

#[test]
fn sql_formats_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let run = townstat(
        &wh,
        &["run", "tests/corpus/pipeline.toml", "--as-of", "2026-01-15"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let q = "SELECT application_no, patent_type, is_pct, applied_on FROM patent ORDER BY application_no";
    for (format, file) in [
        ("table", "sql_patent.txt"),
        ("csv", "sql_patent.csv"),
        ("json", "sql_patent.json"),
    ] {
        let out = townstat(&wh, &["sql", q, "--format", format]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        snapshot(file, &out.stdout);
    }
    // Text Excel would run as a formula is neutralised in csv, kept in csv-raw;
    // numbers are not text and stay as they are.
    let formulas = "SELECT '=cmd|'' /C calc''!A0' AS a, '@SUM(1)' AS b, '+1' AS c, \
                    '-1+2' AS d, -1 AS n, '大同' AS e";
    let out = townstat(&wh, &["sql", formulas, "--format", "csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "a,b,c,d,n,e\n'=cmd|' /C calc'!A0,'@SUM(1),'+1,'-1+2,-1,大同\n"
    );
    let out = townstat(&wh, &["sql", formulas, "--format", "csv-raw"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "a,b,c,d,n,e\n=cmd|' /C calc'!A0,@SUM(1),+1,-1+2,-1,大同\n"
    );

    let pq = dir.path().join("p.parquet");
    let out = townstat(
        &wh,
        &[
            "sql",
            q,
            "--format",
            "parquet",
            "-o",
            pq.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bytes = std::fs::read(&pq).expect("parquet written");
    assert_eq!(&bytes[..4], b"PAR1");

    for stmt in [
        "DROP TABLE enterprise",
        "INSERT INTO town VALUES ('x')",
        "CREATE TABLE t AS SELECT 1",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let out = townstat(&wh, &["sql", stmt]);
        assert_eq!(out.code, 1, "{stmt} must be refused");
        assert!(
            out.stderr.contains("not supported") || out.stderr.contains("Error"),
            "{}",
            out.stderr
        );
    }
    // A statement past the timeout is cancelled: the process ends soon after.
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_townstat"))
        .env("TOWNSTAT_WAREHOUSE", &wh)
        .env("TOWNSTAT_STATEMENT_TIMEOUT", "1")
        .args([
            "sql",
            "SELECT count(*) FROM generate_series(1, 100000000000)",
        ])
        .output()
        .expect("sql");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("statement cancelled after 1 s"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    let empty = tempfile::tempdir().expect("tempdir");
    let out = townstat(&empty.path().join("none"), &["sql", "SELECT 1"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no committed run yet"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_config_is_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "enums = 'e.toml'\ntowns = 't.csv'\n[[source]]\nname = 'x'\nkind = 'patent'\nglob = ['*']\nformt = 'csv'\n")
        .expect("write");
    let out = townstat(&dir.path().join("wh"), &["run", p.to_str().expect("utf-8")]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown field `formt`"),
        "{}",
        out.stderr
    );
    let out = townstat(
        &dir.path().join("wh"),
        &["run", "tests/corpus/pipeline.toml", "--as-of", "2026-13-01"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn demo_prints_the_town_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let out = townstat(&wh, &["demo"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = mask_run_ids(&out.stdout).replace(wh.to_str().expect("utf-8"), "<WAREHOUSE>");
    snapshot("demo.txt", &text);
}

#[test]
fn shell_describes_tables_with_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let run = townstat(
        &wh,
        &["run", "tests/corpus/pipeline.toml", "--as-of", "2026-01-15"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(crate::support::repo())
        .env("TOWNSTAT_WAREHOUSE", &wh)
        .args(["sql"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"\\d patent\nSELECT count(*) AS n\n  FROM enterprise;\n\\d\n\\d+ town_target_pace\n",
        )
        .expect("write");
    let out = child.wait_with_output().expect("shell");
    assert!(out.status.success());
    snapshot("shell.txt", &String::from_utf8_lossy(&out.stdout));
}

/// An evaluation component may be a growth rate (town_year_yoy) or a structure measure
/// (town_year_structure), not only a town_year column. On the slt data with the one
/// component revenue_yoy: alpha's 2023 revenue 4亿 over 0.6亿 → 5.667, beta's 6亿 over
/// 0.6亿 → 9 (beta, rank 1, p = 75; alpha p = 25); 2022 has no rate (2021 is 0), so no
/// evaluation; 2024 both fall to 0 (−1): tied at 50.
#[test]
fn evaluation_components_may_be_growth_rates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = crate::fault::dataset(&dir.path().join("data"));
    std::fs::write(
        dir.path().join("data/evaluation.toml"),
        "[[component]]\nindicator = \"revenue_yoy\"\nweight = 1\nhigher_is_better = true\n",
    )
    .expect("write");
    let wh = dir.path().join("wh");
    let run = townstat(
        &wh,
        &[
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2024-06-30",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT c.town_id, c.year, round(c.value, 6) AS v, c.percentile, e.rank \
             FROM town_evaluation_component c JOIN town_evaluation e USING (town_id, year) \
             ORDER BY c.year, c.town_id"
        ),
        "town_id,year,v,percentile,rank\n\
         alpha,2023,5.666667,25.0,2\n\
         beta,2023,9.0,75.0,1\n\
         alpha,2024,-1.0,50.0,1\n\
         beta,2024,-1.0,50.0,1\n"
    );
}

/// `townstat check` lists every problem of a pipeline file at once, each with its
/// file and line, and exits 2: here five different mistakes.
#[test]
fn check_lists_every_problem_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = crate::support::repo();
    let raw = repo.join("sample-data/raw");
    let text = format!(
        "enums = \"{enums}\"\n\
         towns = \"{raw}/towns.csv\"\n\
         \n\
         [[source]]\n\
         name = \"registry\"\n\
         kind = \"enterprise\"\n\
         glob = [\"{raw}/enterprise/*\"]\n\
         sheeet = \"登记\"\n\
         \n\
         [[source]]\n\
         name = \"annual\"\n\
         kind = \"enterprise_annuals\"\n\
         glob = [\"{raw}/enterprise_annual/*\"]\n\
         \n\
         [[source]]\n\
         name = \"patents\"\n\
         kind = \"patent\"\n\
         glob = [\"{missing}/*.csv\"]\n\
         aliases = {{ titel = [\"题名\"] }}\n\
         \n\
         [[source]]\n\
         name = \"money\"\n\
         kind = \"financing\"\n\
         glob = [\"{raw}/financing/*\"]\n\
         units = {{ amount = \"千元\" }}\n",
        enums = repo.join("pipelines/enums.toml").display(),
        raw = raw.display(),
        missing = dir.path().join("no-such-folder").display(),
    );
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, text).expect("write");
    let out = townstat(
        &dir.path().join("wh"),
        &[
            "check",
            file.to_str().expect("utf-8"),
            "--as-of",
            "2026-01-15",
        ],
    );
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |line: usize, what: &str| {
        let prefix = format!("{}:{line}: ", file.display());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(what)),
            "no {what:?} at line {line}:\n{}",
            out.stdout
        );
    };
    at(8, "unknown key \"sheeet\"");
    at(12, "unknown kind \"enterprise_annuals\"");
    at(18, "does not exist");
    at(19, "has no column \"titel\"");
    at(25, "unit \"千元\" of amount");
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    assert!(out.stderr.contains("5 problems"), "{}", out.stderr);
    assert!(!dir.path().join("wh").exists(), "check wrote a warehouse");
}

/// `townstat init` writes a project that `townstat check` accepts as it is, that runs
/// once the agencies' files are in `raw/`, and it overwrites nothing.
#[test]
fn init_writes_a_project_that_checks_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("project");
    let wh = dir.path().join("wh");
    let p = project.to_str().expect("utf-8");
    assert_eq!(townstat(&wh, &["init", p]).code, 0);
    let pipeline = project.join("pipelines/nightly.toml");
    let pl = pipeline.to_str().expect("utf-8");
    let check = townstat(&wh, &["check", pl, "--as-of", "2026-01-15"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let again = townstat(&wh, &["init", p]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    // The agencies' files (the bundled sample) go under raw/<kind>/.
    let raw = crate::support::repo().join("sample-data/raw");
    for kind in townstat_domain::schema::source_kind_names()
        .into_iter()
        .filter(|k| raw.join(k).is_dir())
    {
        for f in std::fs::read_dir(raw.join(kind)).expect("raw") {
            let f = f.expect("entry").path();
            std::fs::copy(
                &f,
                project
                    .join("raw")
                    .join(kind)
                    .join(f.file_name().expect("name")),
            )
            .expect("copy");
        }
    }
    let run = townstat(&wh, &["run", pl, "--as-of", "2026-01-15"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(wh.join("export/report/townstat-report-2025.xlsx").is_file());
    let service =
        std::fs::read_to_string(project.join("deploy/townstat-nightly.service")).expect("service");
    assert!(service.contains(&format!("run {pl}")), "{service}");
}

/// Rejected rows go back to the agency as a file: `quarantine --format csv --bom
/// --labels zh` has Chinese headers, a byte order mark for Excel and each row's
/// original cells; a list column in CSV is `a;b`; JSON writes nulls; a reader that
/// closes the pipe early ends the command quietly with status 0.
#[test]
fn files_officials_can_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let run = townstat(
        &wh,
        &["run", "tests/corpus/pipeline.toml", "--as-of", "2026-01-15"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rows = sql_csv(&wh, "SELECT count(*) AS n FROM quarantine");
    let n: usize = rows.lines().nth(1).expect("count").parse().expect("number");
    assert!(n > 0);

    let csv = townstat(
        &wh,
        &["quarantine", "--format", "csv", "--bom", "--labels", "zh"],
    );
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    assert!(
        csv.stdout.starts_with('\u{feff}'),
        "a byte order mark first"
    );
    let mut reader = csv::Reader::from_reader(csv.stdout.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "源文件",
            "行号(XLSX为工作表行, CSV为记录起始物理行, NDJSON为行)",
            "记录类型",
            "原因代码",
            "原因说明",
            "原始单元格(JSON)"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(records.len(), n, "every quarantined row");
    assert!(
        records.iter().all(|r| r[5].starts_with('{')),
        "the original cells"
    );

    let workbook = dir.path().join("退回.xlsx");
    let xlsx = townstat(
        &wh,
        &[
            "quarantine",
            "--format",
            "xlsx",
            "--labels",
            "zh",
            "-o",
            workbook.to_str().expect("path"),
        ],
    );
    assert_eq!(xlsx.code, 0, "{}", xlsx.stderr);
    assert!(
        std::fs::read(&workbook)
            .expect("workbook")
            .starts_with(b"PK")
    );

    // The list column itself, in CSV: the reasons joined with ';'.
    let lists = townstat(
        &wh,
        &[
            "sql",
            "SELECT reasons FROM quarantine WHERE cardinality(reasons) > 1 ORDER BY source_file, row_number LIMIT 1",
            "--format",
            "csv",
        ],
    );
    assert_eq!(lists.code, 0, "{}", lists.stderr);
    let cell = lists.stdout.lines().nth(1).expect("a row with two reasons");
    assert!(cell.contains(';') && !cell.contains('['), "{cell}");

    let json = townstat(
        &wh,
        &[
            "sql",
            "SELECT 1 AS a, CAST(NULL AS VARCHAR) AS b",
            "--format",
            "json",
        ],
    );
    assert_eq!(json.stdout, "[{\"a\":1,\"b\":null}]\n");

    // `| head`: the reader goes away after the first bytes.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(crate::support::repo())
        .env("TOWNSTAT_WAREHOUSE", &wh)
        .args([
            "sql",
            "SELECT v FROM generate_series(1, 2000000) AS t(v)",
            "--format",
            "csv",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 16];
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("first bytes");
    let out = child.wait_with_output().expect("exit");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// `--log-format json`: every line is JSON; a file rejected whole is a WARN naming it;
/// dependencies say nothing below WARN; the failure that ends a command is one JSON
/// line too.
#[test]
fn json_logs_an_operator_can_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = dir.path().join("wh");
    let run = townstat(
        &wh,
        &[
            "--log-format",
            "json",
            "run",
            "tests/corpus/pipeline.toml",
            "--as-of",
            "2026-01-15",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let rejected: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "file rejected whole")
        .collect();
    assert!(!rejected.is_empty());
    assert!(rejected.iter().all(|l| l["level"] == "WARN"
        && l["fields"]["file"].is_string()
        && l["fields"]["reason"].is_string()));
    for l in &lines {
        let target = l["target"].as_str().unwrap_or("");
        let level = l["level"].as_str().unwrap_or("");
        assert!(
            target.starts_with("townstat") || matches!(level, "WARN" | "ERROR"),
            "a dependency's {level} line: {l}"
        );
    }

    let bad = townstat(
        &wh,
        &["--log-format", "json", "run", "no/such/pipeline.toml"],
    );
    assert_eq!(bad.code, 2);
    let line: serde_json::Value = serde_json::from_str(bad.stderr.trim()).expect("one JSON line");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["fields"]["exit_code"], 2);
    assert!(
        line["fields"]["message"]
            .as_str()
            .expect("message")
            .contains("no/such/pipeline.toml")
    );
}

/// A source kind added as a schema file only — declared by the pipeline (`kinds =`),
/// no Rust change — is ingested, quarantined, merged by its key and queryable.
#[test]
fn a_kind_declared_in_a_schema_file_runs_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let repo = crate::support::repo();
    std::fs::create_dir_all(dir.join("kinds")).expect("kinds");
    std::fs::create_dir_all(dir.join("subsidy")).expect("subsidy");
    std::fs::write(
        dir.join("kinds/subsidy.toml"),
        r#"name = "subsidy"
label = "政府补助"
kind = "source"
key = ["uscc", "program", "granted_on"]

[[columns]]
name = "uscc"
type = "uscc"
label = "统一社会信用代码"
required = true
aliases = ["统一社会信用代码", "信用代码"]

[[columns]]
name = "program"
type = "text"
label = "补助项目"
required = true
aliases = ["补助项目"]

[[columns]]
name = "category"
type = "enum"
enum = "subsidy_category"
label = "补助类别"
required = true
aliases = ["补助类别"]

[[columns]]
name = "amount"
type = "money"
label = "补助金额(元)"
required = true
min = "zero"
aliases = ["补助金额"]

[[columns]]
name = "granted_on"
type = "date"
label = "拨付日期"
required = true
aliases = ["拨付日期"]

[[columns]]
name = "ends_on"
type = "date"
label = "截止日期"
future_ok = true
aliases = ["截止日期"]

[source]
order = 10
references_registry = true

[[source.checks]]
check = "order"
earlier = "granted_on"
later = "ends_on"
message = "ends_on {later} is before granted_on {earlier}"
"#,
    )
    .expect("kind");
    // The kind's own enumeration, in the project's alias file beside townstat's.
    std::fs::write(
        dir.join("enums.toml"),
        std::fs::read_to_string(repo.join("pipelines/enums.toml")).expect("enums")
            + "\n[subsidy_category]\nresearch = [\"研发\", \"研发类\"]\nupgrade = [\"技改\"]\ntalent = [\"人才\"]\n",
    )
    .expect("enums");
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        format!(
            "enums = \"{}\"\ntowns = \"{}\"\nkinds = [\"kinds/*.toml\"]\n\n\
             [[source]]\nname = \"registry\"\nkind = \"enterprise\"\nglob = [\"{}\"]\n\n\
             [[source]]\nname = \"subsidies (补助台账)\"\nkind = \"subsidy\"\nglob = [\"subsidy/*.csv\"]\n",
            dir.join("enums.toml").display(),
            repo.join("tests/slt/data/towns.csv").display(),
            repo.join("tests/slt/data/enterprise.csv").display(),
        ),
    )
    .expect("pipeline");
    let file = dir.join("subsidy/2023.csv");
    let rows = |amount: &str| {
        format!(
            "信用代码,补助项目,补助类别,补助金额,拨付日期,截止日期\n\
             91140212MA0C00001N,技改补助,技改,{amount},2023-05-01,2025-12-31\n\
             91140212MA0C00002R,研发奖励,研发类,-5万元,2023-06-01,\n\
             91140299MA0C0000XX,研发奖励,研发,10万元,2023-06-01,\n\
             91140212MA0C000040,人才补贴,人才,8万元,2023-07-01,2023-01-01\n\
             91140212MA0C000040,稳岗补贴,稳岗,2万元,2023-08-01,\n"
        )
    };
    std::fs::write(&file, rows("50万元")).expect("rows");
    let wh = dir.join("wh");
    let p = pipeline.to_str().expect("utf-8");
    let out = townstat(&wh, &["run", p, "--as-of", "2024-06-30"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // Ingested, with the kind's own labels where SQL users see them.
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT uscc, program, category, CAST(amount AS VARCHAR) AS amount, source_row \
             FROM subsidy"
        ),
        "uscc,program,category,amount,source_row\n91140212MA0C00001N,技改补助,upgrade,500000.00,2\n"
    );
    // `sql`, which reads no pipeline, knows the kind's labels from the run
    // (declared_kind): in headers and in the shell's \d.
    let labelled = townstat(
        &wh,
        &[
            "sql",
            "--labels",
            "zh",
            "--format",
            "csv",
            "SELECT program, category, amount FROM subsidy",
        ],
    );
    assert_eq!(labelled.code, 0, "{}", labelled.stderr);
    assert!(
        labelled
            .stdout
            .starts_with("补助项目,补助类别,补助金额(元)\n"),
        "{}",
        labelled.stdout
    );
    let mut shell = std::process::Command::new(env!("CARGO_BIN_EXE_townstat"))
        .env("TOWNSTAT_WAREHOUSE", &wh)
        .args(["sql"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(
        &mut shell.stdin.take().expect("stdin"),
        b"\\d subsidy\n\\d\n",
    )
    .expect("write");
    let described = shell.wait_with_output().expect("shell");
    let described = String::from_utf8_lossy(&described.stdout);
    assert!(
        described.contains("补助类别")
            && described.contains("拨付日期")
            && described.contains("政府补助"),
        "{described}"
    );
    // Quarantined with the closed list's reasons: a negative amount, an invalid USCC
    // (bad check digit), a date order broken by the declared check, a category its
    // enumeration does not list.
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT row_number, array_to_string(reasons, ';') AS reasons FROM quarantine \
             WHERE kind = 'subsidy' ORDER BY row_number"
        ),
        "row_number,reasons\n3,negative_amount\n4,invalid_uscc\n5,date_order\n6,unknown_enum_value\n"
    );
    // Merged by its key: the same row with a corrected amount replaces it.
    std::fs::write(&file, rows("55万元")).expect("rows");
    let again = townstat(&wh, &["run", p, "--as-of", "2024-06-30"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT count(*) AS n, CAST(sum(amount) AS VARCHAR) AS total FROM subsidy"
        ),
        "n,total\n1,550000.00\n"
    );
    // `townstat check` knows the key and the kind.
    let checked = townstat(&wh, &["check", p]);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    // An alias file without the kind's enumeration stops the run before anything is
    // read, naming the column (else every row would be quarantined).
    let bare = dir.join("bare.toml");
    std::fs::write(
        &bare,
        std::fs::read_to_string(&pipeline)
            .expect("pipeline")
            .replace(
                &dir.join("enums.toml").display().to_string(),
                &repo.join("pipelines/enums.toml").display().to_string(),
            ),
    )
    .expect("bare");
    let missing = townstat(&wh, &["run", bare.to_str().expect("utf-8"), "--force"]);
    assert_eq!(missing.code, 2, "{}{}", missing.stdout, missing.stderr);
    assert!(
        missing
            .stderr
            .contains("subsidy.category takes values of enumeration [subsidy_category]"),
        "{}",
        missing.stderr
    );
    // A declared kind may not take a name of townstat's own.
    std::fs::write(
        dir.join("kinds/subsidy.toml"),
        std::fs::read_to_string(dir.join("kinds/subsidy.toml"))
            .expect("read")
            .replacen("name = \"subsidy\"", "name = \"patent\"", 1),
    )
    .expect("rename");
    let clash = townstat(&wh, &["check", p]);
    assert_ne!(clash.code, 0);
    assert!(
        clash.stdout.contains("patent is a table of townstat's own")
            || clash.stderr.contains("patent is a table of townstat's own"),
        "{}{}",
        clash.stdout,
        clash.stderr
    );
}
