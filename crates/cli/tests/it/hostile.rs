//! Hostile files through the real binary: peak memory stays bounded on the files that
//! used to take gigabytes or abort the process (a shared-string count of 10^17, cells
//! at A1 and XFD1048576, a 200 MB line, 4 M rows in a workbook, 50,000 NDJSON keys,
//! nesting 100,000 deep), each file rejected or read with the run finishing (exit 3 or
//! 0, never a panic or an abort); and a file rewritten while the run reads it is
//! rejected for that run and loaded whole by the next (a pause point in the reader,
//! `TOWNSTAT_TEST_PAUSE_READ`, makes the rewrite land mid-read). The outcomes of the
//! committed hostile files are checked in crates/ingest/tests/it/hostile.rs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{repo, sql_csv};

/// The peak RSS a run may reach on any hostile file.
const PEAK_LIMIT_KIB: u64 = 1024 * 1024;

const HEADER: &str =
    "统一社会信用代码,企业名称,成立日期,行业代码,行政区划代码,住所,注册资本(万元),登记状态";

/// A valid USCC (GB 32100 check character), as tests/hostile/make_hostile.py builds them.
fn uscc(n: u32) -> String {
    townstat_domain::uscc::with_check(&format!("91140212MA0C{n:05}")).expect("17 valid characters")
}

fn row(n: u32) -> String {
    format!(
        "{},大同测试{n}有限公司,2015-03-01,3091,140212,,500,存续",
        uscc(n)
    )
}

/// A pipeline reading every file of `data` (enterprise and employment sources).
fn pipeline(dir: &Path, data: &Path) -> PathBuf {
    let text = format!(
        "enums = \"{}\"\ntowns = \"{}\"\n\
         [[source]]\nname = \"registry\"\nkind = \"enterprise\"\nglob = [\"{}/*.csv\", \"{}/*.xlsx\"]\n\
         [[source]]\nname = \"employment\"\nkind = \"employment\"\nglob = [\"{}/*.ndjson\"]\n",
        repo().join("pipelines/enums.toml").display(),
        repo().join("tests/corpus/towns.csv").display(),
        data.display(),
        data.display(),
        data.display(),
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).expect("pipeline");
    p
}

/// Runs `townstat run` under GNU time: (exit code, stdout, stderr, peak RSS in KiB).
fn run_measured(wh: &Path, pipeline: &Path) -> (i32, String, String, u64) {
    let peak_file = wh.with_extension("peak");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&peak_file)
        .arg(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", wh)
        .env_remove("RUST_LOG")
        .args([
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2026-01-15",
        ])
        .output()
        .expect("GNU time runs townstat");
    let peak = std::fs::read_to_string(&peak_file)
        .expect("peak")
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("a peak in KiB");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        peak,
    )
}

/// A workbook of one sheet (no shared strings) with the given sheet XML, stored
/// uncompressed (the test builds it fast; what matters is what the sheet holds).
fn workbook(path: &Path, sheet: impl FnOnce(&mut dyn Write)) {
    let file = std::fs::File::create(path).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
    ];
    for (name, text) in parts {
        zip.start_file(name, opts).expect("part");
        zip.write_all(text.as_bytes()).expect("write");
    }
    zip.start_file("xl/worksheets/sheet1.xml", opts)
        .expect("sheet");
    sheet(&mut zip);
    zip.finish().expect("zip");
}

#[test]
fn hostile_files_are_contained_in_bounded_memory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hostile = repo().join("tests/hostile/files/enterprise");
    // (file name, how to make it, what ingest_run must say)
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "shared_strings_bomb.xlsx",
            Box::new(move |p: &Path| {
                std::fs::copy(hostile.join("shared_strings_bomb.xlsx"), p).expect("copy");
            }),
            "rejected:the shared strings claim 99999999999999999 strings",
        ),
        (
            "xfd1048576.xlsx",
            Box::new(|p: &Path| {
                let src = repo().join("tests/hostile/files/enterprise/xfd1048576.xlsx");
                std::fs::copy(src, p).expect("copy");
            }),
            "loaded:2/1/1",
        ),
        (
            "one_line_200mb.csv",
            Box::new(|p: &Path| {
                let mut f = std::io::BufWriter::new(std::fs::File::create(p).expect("create"));
                writeln!(f, "{HEADER}").expect("write");
                let chunk = "x".repeat(1 << 20);
                for _ in 0..200 {
                    f.write_all(chunk.as_bytes()).expect("write");
                }
                f.flush().expect("flush");
            }),
            "rejected:line 2: a record longer than 1048576 bytes",
        ),
        (
            "four_million_rows.xlsx",
            Box::new(|p: &Path| {
                workbook(p, |w| {
                    let mut w = std::io::BufWriter::new(w);
                    write!(
                        w,
                        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#
                    )
                    .expect("write");
                    for r in 1..=4_000_000u32 {
                        write!(w, r#"<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>"#)
                            .expect("write");
                    }
                    write!(w, "</sheetData></worksheet>").expect("write");
                    w.flush().expect("flush");
                });
            }),
            "rejected:cell A1048577 is beyond Excel's 1048576 rows",
        ),
        (
            "fifty_thousand_keys.ndjson",
            Box::new(|p: &Path| {
                let wide: String = (0..50_000).map(|i| format!(",\"extra_{i}\":{i}")).collect();
                let mut f = std::io::BufWriter::new(std::fs::File::create(p).expect("create"));
                writeln!(
                    f,
                    "{{\"统一社会信用代码\":\"{}\",\"所属期\":\"2023-05\",\"参保人数\":12{wide}}}",
                    uscc(1)
                )
                .expect("write");
                for i in 0..3000 {
                    writeln!(
                        f,
                        "{{\"统一社会信用代码\":\"BAD{i}\",\"所属期\":\"2023-05\",\"参保人数\":1}}"
                    )
                    .expect("write");
                }
                f.flush().expect("flush");
            }),
            "loaded:3001/1/3000",
        ),
        (
            "nested_100000.ndjson",
            Box::new(|p: &Path| {
                let line = format!(
                    "{{\"统一社会信用代码\":\"{}\",\"所属期\":\"2023-05\",\"参保人数\":{}{}}}\n",
                    uscc(1),
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                );
                std::fs::write(p, line).expect("write");
            }),
            "rejected:recursion limit exceeded",
        ),
    ];
    let mut measured = vec![];
    for (i, (name, make, expect)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("mkdir");
        // The registry the NDJSON rows reference.
        std::fs::write(data.join("registry.csv"), format!("{HEADER}\n{}\n", row(1)))
            .expect("registry");
        make(&data.join(name));
        let p = pipeline(&dir, &data);
        let wh = dir.join("wh");
        let (code, stdout, stderr, peak) = run_measured(&wh, &p);
        std::fs::remove_file(data.join(name)).expect("remove the big file");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let account = sql_csv(
            &wh,
            &format!(
                "SELECT status, rows_read, rows_loaded, rows_quarantined, coalesce(message, '') AS m \
                 FROM ingest_run WHERE source_file LIKE '%{name}'"
            ),
        );
        let fields: Vec<String> = csv::ReaderBuilder::new()
            .from_reader(account.as_bytes())
            .records()
            .next()
            .unwrap_or_else(|| panic!("{name} is not in ingest_run: {stdout}"))
            .expect("csv")
            .iter()
            .map(str::to_string)
            .collect();
        match expect.split_once(':') {
            Some(("rejected", message)) => {
                assert_eq!(code, 3, "{name}: {stdout}{stderr}");
                assert_eq!(fields[0], "rejected", "{name}: {fields:?}");
                assert!(fields[4].contains(message), "{name}: {fields:?}");
                assert!(
                    fields[4].contains(name),
                    "{name}: the message names the file"
                );
            }
            Some(("loaded", counts)) => {
                assert_eq!(code, 0, "{name}: {stdout}{stderr}");
                assert_eq!(fields[0], "loaded", "{name}: {fields:?}");
                assert_eq!(fields[1..4].join("/"), counts, "{name}: {fields:?}");
            }
            _ => unreachable!(),
        }
        assert!(
            peak < PEAK_LIMIT_KIB,
            "{name}: peak RSS {} MiB, over {} MiB",
            peak / 1024,
            PEAK_LIMIT_KIB / 1024
        );
        measured.push(format!("{name}: {} MiB", peak / 1024));
    }
    eprintln!("peak RSS per hostile file: {}", measured.join(", "));
}

fn wait_for(path: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) before pausing at {}",
                path.display()
            );
        }
        assert!(Instant::now() < deadline, "no {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A registry CSV: the header and the rows of enterprises `from..=to`.
fn registry_csv(from: u32, to: u32) -> String {
    let lines: Vec<String> = std::iter::once(HEADER.to_string())
        .chain((from..=to).map(row))
        .collect();
    format!("{}\n", lines.join("\n"))
}

/// Starts a run of `pipeline` whose reader pauses in the file named `file` (after
/// its first block), and returns once it has paused; `signals/resume` lets it go on.
fn run_paused_at(wh: &Path, pipeline: &Path, file: &str, signals: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", wh)
        .env("TOWNSTAT_TEST_PAUSE_READ", file)
        .env("TOWNSTAT_TEST_PAUSE_DIR", signals)
        .env_remove("RUST_LOG")
        .args([
            "run",
            pipeline.to_str().expect("utf-8"),
            "--as-of",
            "2026-01-15",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for(&signals.join("paused"), &mut child);
    child
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

#[test]
fn a_file_rewritten_while_read_is_rejected_then_loaded_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let signals = tmp.path().join("signals");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::create_dir_all(&signals).expect("mkdir");
    // 1,500 rows (over 100 KB): the reader pauses after its first 64 KiB.
    let file = data.join("registry.csv");
    std::fs::write(&file, registry_csv(1, 1500)).expect("write");
    assert!(std::fs::metadata(&file).expect("size").len() > 100 * 1024);
    let p = pipeline(tmp.path(), &data);
    let wh = tmp.path().join("wh");

    let child = run_paused_at(&wh, &p, "registry.csv", &signals);
    // Truncated and rewritten, as an export job does, while the run is mid-file.
    std::fs::write(&file, registry_csv(2001, 2010)).expect("rewrite");
    std::fs::write(signals.join("resume"), b"").expect("resume");
    let out = child.wait_with_output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("the file changed while it was read"),
        "{stdout}"
    );
    assert_eq!(
        sql_csv(&wh, "SELECT status, rows_read FROM ingest_run"),
        "status,rows_read\nrejected,0\n"
    );
    assert_eq!(
        sql_csv(&wh, "SELECT count(*) AS n FROM enterprise"),
        "n\n0\n"
    );

    // The next run reads the file as it now is, whole, under the hash of those bytes.
    let second = crate::support::townstat(
        &wh,
        &["run", p.to_str().expect("utf-8"), "--as-of", "2026-01-15"],
    );
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let hash = sha256(&file);
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT status, rows_read, rows_loaded, content_hash FROM ingest_run \
             WHERE status = 'loaded'"
        ),
        format!("status,rows_read,rows_loaded,content_hash\nloaded,10,10,{hash}\n")
    );
    assert_eq!(
        sql_csv(&wh, "SELECT count(*) AS n FROM enterprise"),
        "n\n10\n"
    );
}

/// A file deleted while the run reads it (an export job cleaning up): rejected for
/// this run with a message that says so; the other files of the night still load.
#[test]
fn a_file_removed_while_read_is_rejected_and_the_night_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let signals = tmp.path().join("signals");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::create_dir_all(&signals).expect("mkdir");
    std::fs::write(data.join("a_registry.csv"), registry_csv(1, 1500)).expect("write");
    std::fs::write(data.join("b_registry.csv"), registry_csv(3001, 3005)).expect("write");
    let p = pipeline(tmp.path(), &data);
    let wh = tmp.path().join("wh");
    let child = run_paused_at(&wh, &p, "a_registry.csv", &signals);
    std::fs::remove_file(data.join("a_registry.csv")).expect("remove");
    std::fs::write(signals.join("resume"), b"").expect("resume");
    let out = child.wait_with_output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("removed (or moved away) while it was read"),
        "{stdout}"
    );
    assert_eq!(
        sql_csv(
            &wh,
            "SELECT status, rows_read, rows_loaded FROM ingest_run ORDER BY source_file"
        ),
        "status,rows_read,rows_loaded\nrejected,0,0\nloaded,5,5\n"
    );
    assert_eq!(
        sql_csv(&wh, "SELECT count(*) AS n FROM enterprise"),
        "n\n5\n"
    );
}
