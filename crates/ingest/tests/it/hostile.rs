//! The hostile-input suite (`tests/hostile`): files built to break a reader, each with
//! the one outcome it must have, written in `expect.csv` — rejected whole with a
//! message naming the file and the problem, or read with exact counts. The files git
//! cannot hold or that are too large to commit are made here in a temporary copy: a
//! GBK file name, a directory, a FIFO and a symlink loop matched by the glob, an NDJSON
//! file with 50,000 keys, one nested 100,000 deep. (Peak memory on the large ones is
//! checked with the real binary: crates/cli/tests/it/hostile.rs.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use townstat_domain::town::TownIndex;
use townstat_ingest::{
    FileReport, FileStatus, IngestOptions, IngestOutput, Pipeline, Registry, ingest,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let p = entry.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

/// A copy of the hostile files in `dir`, with a pipeline over them.
pub fn hostile_copy(dir: &Path) -> PathBuf {
    copy_dir(&repo().join("tests/hostile/files"), &dir.join("files"));
    let enums = repo().join("pipelines/enums.toml");
    let towns = repo().join("tests/corpus/towns.csv");
    let pipeline = format!(
        "enums = {:?}\ntowns = {:?}\n\
         [[source]]\nname = \"registry\"\nkind = \"enterprise\"\nglob = [\"files/enterprise/*\"]\n\
         [[source]]\nname = \"employment\"\nkind = \"employment\"\nglob = [\"files/employment/*\"]\n",
        enums.canonicalize().expect("enums").display().to_string(),
        towns.canonicalize().expect("towns").display().to_string(),
    );
    std::fs::create_dir_all(dir.join("files/employment")).expect("mkdir");
    std::fs::write(dir.join("pipeline.toml"), pipeline).expect("pipeline");
    dir.join("pipeline.toml")
}

fn run(pipeline: &Path) -> IngestOutput {
    let stage = tempfile::tempdir().expect("staging folder");
    let pipeline = Pipeline::load(pipeline).expect("pipeline loads");
    let never = |_: &str| false;
    let towns = TownIndex::new(
        &townstat_domain::town::load_registry(&pipeline.resolve(&pipeline.file.towns))
            .expect("towns load"),
    );
    ingest(
        &pipeline,
        &IngestOptions {
            run_id: "hostile",
            as_of: NaiveDate::from_ymd_opt(2026, 1, 15).expect("date"),
            already_loaded: &never,
            on_file: &|_| {},
            towns: &towns,
            stage: stage.path(),
        },
        Registry::default(),
    )
    .expect("ingest runs")
}

/// A valid USCC (GB 32100 check character), as make_hostile.py builds them.
fn uscc(n: u32) -> String {
    townstat_domain::uscc::with_check(&format!("91140212MA0C{n:05}")).expect("17 valid characters")
}

/// A registered enterprise of the hostile files (loaded in the same run).
fn known_uscc() -> String {
    let text =
        std::fs::read_to_string(repo().join("tests/hostile/files/enterprise/title_rows.csv"))
            .expect("title_rows.csv");
    text.lines()
        .nth(3)
        .and_then(|l| l.split(',').next())
        .expect("a row")
        .to_string()
}

fn report<'a>(out: &'a IngestOutput, suffix: &str) -> &'a FileReport {
    out.files
        .iter()
        .find(|f| f.source_file.ends_with(suffix))
        .unwrap_or_else(|| panic!("{suffix} is not in the run's files: {:?}", out.files))
}

#[test]
fn every_hostile_file_gets_exactly_its_expected_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = hostile_copy(dir.path());
    let ent = dir.path().join("files/enterprise");
    let emp = dir.path().join("files/employment");
    let known = known_uscc();

    // A file named in GBK (登记名录.csv), which the glob crate alone skips.
    let gbk_name: &[u8] = b"\xB5\xC7\xBC\xC7\xC3\xFB\xC2\xBC.csv";
    let gbk_path = {
        use std::os::unix::ffi::OsStrExt;
        ent.join(std::ffi::OsStr::from_bytes(gbk_name))
    };
    let title = std::fs::read_to_string(ent.join("title_rows.csv")).expect("title rows");
    let lines: Vec<&str> = title.lines().collect();
    assert_eq!(
        uscc(70),
        known,
        "the test builds USCCs as make_hostile.py does"
    );
    let row = lines[3].replace(&known, &uscc(300));
    std::fs::write(&gbk_path, format!("{}\n{row}\n", lines[2])).expect("gbk name");
    // What a glob may match that is not a file.
    std::fs::create_dir(ent.join("folder.csv")).expect("dir");
    let fifo = std::process::Command::new("mkfifo")
        .arg(ent.join("pipe.csv"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::os::unix::fs::symlink("loop.csv", ent.join("loop.csv")).expect("symlink");

    // NDJSON: a first line with 50,000 keys no column has, 3,000 rows with a bad USCC,
    // and a last bad row with the 50,000 keys again.
    let wide: String = (0..50_000).map(|i| format!(",\"extra_{i}\":{i}")).collect();
    let mut nd = format!(
        "{{\"统一社会信用代码\":\"{uscc}\",\"所属期\":\"2023-05\",\"参保人数\":12{wide}}}\n",
        uscc = known
    );
    for i in 0..3000 {
        nd.push_str(&format!(
            "{{\"统一社会信用代码\":\"BAD{i}\",\"所属期\":\"2023-05\",\"参保人数\":1}}\n"
        ));
    }
    nd.push_str(&format!(
        "{{\"统一社会信用代码\":\"BADWIDE\",\"所属期\":\"2023-05\",\"参保人数\":1{wide}}}\n"
    ));
    std::fs::write(emp.join("wide_keys.ndjson"), nd).expect("ndjson");
    // Nested 100,000 deep under a column's key: the parser's depth limit, not the stack.
    let deep = format!(
        "{{\"统一社会信用代码\":\"{uscc}\",\"所属期\":\"2023-05\",\"参保人数\":{}{}}}\n",
        "[".repeat(100_000),
        "]".repeat(100_000),
        uscc = known
    );
    std::fs::write(emp.join("deep.ndjson"), deep).expect("deep");
    // A header of 100,000 columns (only the first eight known).
    let header = lines[2];
    let wide_header = format!("{header}{}\n", ",x".repeat(100_000 - 8));
    std::fs::write(
        ent.join("wide_columns.csv"),
        format!("{wide_header}{}\n", lines[3]),
    )
    .expect("wide columns");

    let out = run(&pipeline);

    // Every path the globs match is in the run's account, and nothing is lost.
    let on_disk = std::fs::read_dir(&ent).expect("dir").count()
        + std::fs::read_dir(&emp).expect("dir").count();
    assert_eq!(out.files.len(), on_disk, "{:#?}", out.files);
    for f in &out.files {
        assert_eq!(
            f.rows_read,
            f.rows_loaded + f.rows_duplicate + f.rows_quarantined,
            "{}",
            f.source_file
        );
    }

    // The committed files, against expect.csv.
    let expect =
        std::fs::read_to_string(repo().join("tests/hostile/expect.csv")).expect("expect.csv");
    let mut checked = 0;
    for line in expect.lines().skip(1) {
        let (file, what) = line.split_once(',').expect("file,expect");
        let f = report(&out, file);
        if let Some(message) = what.strip_prefix("rejected:") {
            assert_eq!(f.status, FileStatus::Rejected, "{file}: {f:?}");
            assert_eq!(f.rows_read, 0, "{file}");
            let m = f.message.as_deref().unwrap_or_default();
            assert!(m.contains(message), "{file}: {m:?} lacks {message:?}");
            assert!(
                m.starts_with(&f.source_file),
                "{file}: the message names the file: {m}"
            );
            assert_eq!(f.content_hash.len(), 64, "{file}: hashed as read");
        } else {
            let mut parts = what.split(';');
            let counts: Vec<i64> = parts
                .next()
                .and_then(|c| c.strip_prefix("rows:"))
                .expect("rows:")
                .split('/')
                .map(|n| n.parse().expect("count"))
                .collect();
            assert_eq!(f.status, FileStatus::Loaded, "{file}: {f:?}");
            assert_eq!(
                vec![f.rows_read, f.rows_loaded, f.rows_quarantined],
                counts,
                "{file}: read/loaded/quarantined"
            );
            let mut wanted: BTreeMap<i64, String> = BTreeMap::new();
            for p in parts {
                let (row, reason) = p
                    .strip_prefix("row ")
                    .and_then(|p| p.split_once(':'))
                    .expect("row N:reason");
                wanted.insert(row.parse().expect("row"), reason.to_string());
            }
            let got: BTreeMap<i64, &Vec<String>> = out
                .quarantine
                .iter()
                .filter(|q| q.source_file == f.source_file)
                .map(|q| (q.row_number, &q.reasons))
                .collect();
            assert_eq!(got.len(), wanted.len(), "{file}: {got:?}");
            for (row, reason) in &wanted {
                let reasons = got
                    .get(row)
                    .unwrap_or_else(|| panic!("{file}: row {row} not quarantined: {got:?}"));
                assert!(reasons.contains(reason), "{file} row {row}: {reasons:?}");
            }
        }
        checked += 1;
    }
    // Every committed file has its line in expect.csv.
    let committed: usize = std::fs::read_dir(repo().join("tests/hostile/files"))
        .expect("files")
        .flatten()
        .map(|kind| std::fs::read_dir(kind.path()).expect("kind").count())
        .sum();
    assert_eq!(checked, committed, "files without a line in expect.csv");
    assert!(checked >= 27, "{checked}");

    // XLSX cells that hold no value are named in the message.
    let cells = report(&out, "formula_and_error_cells.xlsx")
        .source_file
        .clone();
    let messages: Vec<String> = out
        .quarantine
        .iter()
        .filter(|q| q.source_file == cells)
        .flat_map(|q| q.messages.clone())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("G3: #DIV/0!")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("C4: formula without a cached value")),
        "{messages:?}"
    );

    // The generated paths.
    let gbk = report(&out, "\\xB5\\xC7\\xBC\\xC7\\xC3\\xFB\\xC2\\xBC.csv");
    assert_eq!(
        (gbk.status, gbk.rows_read, gbk.rows_loaded),
        (FileStatus::Loaded, 1, 1),
        "{gbk:?}"
    );
    for (name, message) in [
        ("folder.csv", "a directory, not a regular file"),
        ("pipe.csv", "not a regular file (a FIFO"),
        ("loop.csv", "cannot read: "),
    ] {
        let f = report(&out, name);
        assert_eq!(f.status, FileStatus::Rejected, "{name}");
        let m = f.message.as_deref().unwrap_or_default();
        assert!(
            m.contains(message) && m.starts_with(&f.source_file),
            "{name}: {m}"
        );
    }

    let wide = report(&out, "wide_keys.ndjson");
    assert_eq!(
        (
            wide.status,
            wide.rows_read,
            wide.rows_loaded,
            wide.rows_quarantined
        ),
        (FileStatus::Loaded, 3002, 1, 3001)
    );
    let raws: Vec<&str> = out
        .quarantine
        .iter()
        .filter(|q| q.source_file == wide.source_file)
        .map(|q| q.raw.as_str())
        .collect();
    assert_eq!(raws.len(), 3001);
    assert_eq!(
        raws[0], r#"{"参保人数":1.0,"所属期":"2023-05","统一社会信用代码":"BAD0"}"#,
        "a row's own keys only"
    );
    let last = raws[3000];
    assert!(last.len() <= 64 * 1024, "{}", last.len());
    let capped: serde_json::Value = serde_json::from_str(last).expect("still JSON");
    assert_eq!(capped["_truncated"], serde_json::Value::Bool(true));
    assert!(
        capped["_prefix"]
            .as_str()
            .is_some_and(|p| p.contains("BADWIDE") || p.contains("extra_0"))
    );

    let columns = report(&out, "wide_columns.csv");
    assert_eq!(
        (columns.status, columns.rows_read),
        (FileStatus::Rejected, 0)
    );
    let m = columns.message.as_deref().unwrap_or_default();
    assert!(
        m.contains("line 1 has 100000 columns; at most 16384 are accepted"),
        "{m}"
    );

    let deep = report(&out, "deep.ndjson");
    assert_eq!(deep.status, FileStatus::Rejected);
    let m = deep.message.as_deref().unwrap_or_default();
    assert!(
        m.contains("line 1") && m.contains("recursion limit exceeded"),
        "{m}"
    );
}
