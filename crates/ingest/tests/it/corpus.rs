//! The bad-input corpus (`tests/corpus`): every file and row there has the exact
//! reject reasons, warnings, duplicate status or whole-file error it must produce,
//! written down by hand in `expect.csv`. Ingestion must match it in both directions:
//! nothing expected missing, nothing unexpected quarantined or warned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Decimal128Type;
use chrono::NaiveDate;
use townstat_domain::town::TownIndex;
use townstat_ingest::{FileStatus, IngestOptions, IngestOutput, Pipeline, Registry, ingest};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

/// An ingest's output with the folder its rows are staged in (removed with it).
struct Ingested {
    out: IngestOutput,
    _stage: tempfile::TempDir,
}

impl std::ops::Deref for Ingested {
    type Target = IngestOutput;

    fn deref(&self) -> &IngestOutput {
        &self.out
    }
}

fn run_corpus() -> Ingested {
    let stage = tempfile::tempdir().expect("staging folder");
    let pipeline = Pipeline::load(&corpus_dir().join("pipeline.toml")).expect("pipeline loads");
    let never = |_: &str| false;
    let towns = TownIndex::new(
        &townstat_domain::town::load_registry(&pipeline.resolve(&pipeline.file.towns))
            .expect("towns load"),
    );
    let out = ingest(
        &pipeline,
        &IngestOptions {
            run_id: "test-run",
            as_of: NaiveDate::from_ymd_opt(2026, 1, 15).expect("date"),
            already_loaded: &never,
            on_file: &|_| {},
            towns: &towns,
            stage: stage.path(),
        },
        Registry::default(),
    )
    .expect("ingest runs");
    Ingested { out, _stage: stage }
}

/// `…/tests/corpus/files/x/y.csv` → `x/y.csv`.
fn short(path: &str) -> String {
    let marker = "corpus/files/";
    match path.find(marker) {
        Some(i) => path[i + marker.len()..].to_string(),
        None => path.to_string(),
    }
}

struct Expect {
    reasons: BTreeMap<(String, i64), BTreeSet<String>>,
    warnings: BTreeMap<(String, i64), BTreeSet<String>>,
    duplicates: BTreeMap<String, i64>,
    rejected: BTreeMap<String, String>,
}

fn expectations() -> Expect {
    let text = std::fs::read_to_string(corpus_dir().join("expect.csv")).expect("expect.csv");
    let mut e = Expect {
        reasons: BTreeMap::new(),
        warnings: BTreeMap::new(),
        duplicates: BTreeMap::new(),
        rejected: BTreeMap::new(),
    };
    for line in text.lines().skip(1) {
        let mut f = line.splitn(3, ',');
        let (file, row, what) = (
            f.next().expect("file").to_string(),
            f.next().expect("row").parse::<i64>().expect("row number"),
            f.next().expect("expect"),
        );
        let codes = |s: &str| s.split(';').map(str::to_string).collect::<BTreeSet<_>>();
        if let Some(w) = what.strip_prefix("warn:") {
            e.warnings.insert((file, row), codes(w));
        } else if let Some(m) = what.strip_prefix("rejected:") {
            e.rejected.insert(file, m.to_string());
        } else if what == "duplicate" {
            *e.duplicates.entry(file).or_default() += 1;
        } else {
            e.reasons.insert((file, row), codes(what));
        }
    }
    e
}

#[test]
fn every_corpus_file_gets_exactly_its_expected_outcome() {
    let out = run_corpus();
    let e = expectations();

    let quarantined: BTreeMap<(String, i64), BTreeSet<String>> = out
        .quarantine
        .iter()
        .map(|q| {
            (
                (short(&q.source_file), q.row_number),
                q.reasons.iter().cloned().collect(),
            )
        })
        .collect();
    assert_eq!(quarantined, e.reasons, "quarantine differs from expect.csv");
    // Conflicting duplicates keep their original cells too (read again from the file).
    let conflicts: Vec<&str> = out
        .quarantine
        .iter()
        .filter(|q| q.reasons == ["conflicting_duplicate"])
        .map(|q| q.raw.as_str())
        .collect();
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts[0].contains("冲突公司甲"), "{}", conflicts[0]);
    assert!(
        conflicts[0].contains("\"成立日期\":\"2015-01-01\""),
        "{}",
        conflicts[0]
    );
    assert!(conflicts[1].contains("冲突公司乙"), "{}", conflicts[1]);
    for q in &out.quarantine {
        assert_eq!(
            q.reasons.len(),
            q.messages.len(),
            "one message per reason: {q:?}"
        );
        assert!(
            q.raw.starts_with('{'),
            "raw cells as a JSON object: {}",
            q.raw
        );
    }

    let warned: BTreeMap<(String, i64), BTreeSet<String>> = out
        .warnings
        .iter()
        .map(|w| {
            (
                (short(&w.source_file), w.row_number),
                w.warnings.iter().cloned().collect(),
            )
        })
        .collect();
    assert_eq!(warned, e.warnings, "warnings differ from expect.csv");

    for f in &out.files {
        let name = short(&f.source_file);
        assert_eq!(
            f.rows_read,
            f.rows_loaded + f.rows_duplicate + f.rows_quarantined,
            "nothing lost in {name}"
        );
        match e.rejected.get(&name) {
            Some(msg) => {
                assert_eq!(f.status, FileStatus::Rejected, "{name} must be rejected");
                let m = f.message.clone().unwrap_or_default();
                assert!(m.contains(msg), "{name}: message {m:?} lacks {msg:?}");
                assert!(m.contains(&name), "{name}: message {m:?} names the file");
                assert_eq!(f.rows_read, 0, "a rejected file reports 0 rows read");
            }
            None => assert_eq!(f.status, FileStatus::Loaded, "{name}: {:?}", f.message),
        }
        assert_eq!(
            f.rows_duplicate,
            e.duplicates.get(&name).copied().unwrap_or(0),
            "duplicates of {name}"
        );
    }
    let seen: BTreeSet<String> = out.files.iter().map(|f| short(&f.source_file)).collect();
    for file in e.rejected.keys() {
        assert!(seen.contains(file), "{file} was not read at all");
    }
}

#[test]
fn loaded_values_are_canonical() {
    let out = run_corpus();
    let ent = &out.tables["enterprise"]
        .collect()
        .expect("staged rows read back");
    let col = |name: &str| ent.column(ent.schema().index_of(name).expect(name)).clone();
    let uscc = col("uscc");
    let uscc = uscc.as_string::<i32>();
    let name = col("name");
    let name = name.as_string::<i32>();
    let capital = col("registered_capital");
    let capital = capital.as_primitive::<Decimal128Type>();
    let division = col("division_code");
    let division = division.as_string::<i32>();
    let kind = col("entity_kind");
    let kind = kind.as_string::<i32>();
    let row = |prefix: &str| {
        (0..ent.num_rows())
            .find(|&i| name.value(i).starts_with(prefix))
            .unwrap_or_else(|| panic!("no enterprise named {prefix}"))
    };
    // 1,200 under 注册资本(万元) is 12,000,000.00 元.
    let r = row("大同轨道装备");
    assert_eq!(capital.value(r), 1_200_000_000);
    // Full-width brackets are stored half-width.
    let r = row("大同新荣石墨");
    assert_eq!(name.value(r), "大同新荣石墨(集团)有限公司");
    // A line break inside a quoted field is one space; 3.5亿 is exact.
    let r = row("大同市平城区 轨道");
    assert_eq!(name.value(r), "大同市平城区 轨道 配件厂");
    assert_eq!(capital.value(r), 35_000_000_000);
    // Legacy 南郊区 in the address → 云冈区; kind derived from the USCC.
    let r = row("浑源黄芪");
    assert_eq!(division.value(r), "140214");
    assert_eq!(kind.value(r), "cooperative");
    let r = row("大同煤机");
    assert_eq!(division.value(r), "140214");
    assert!(capital.is_valid(r));
    assert!(uscc.value(r).starts_with("91140214"));
    // 12-digit division codes are truncated to the county.
    let r = row("吊销公司");
    assert_eq!(division.value(r), "140212");

    // Patent applicants: by USCC, by name, unlinked, ambiguous.
    let app = &out.tables["patent_applicant"]
        .collect()
        .expect("staged rows read back");
    let s = |c: &str| {
        app.column(app.schema().index_of(c).expect(c))
            .as_string::<i32>()
            .clone()
    };
    let (no, who, code, method) = (
        s("application_no"),
        s("applicant_name"),
        s("uscc"),
        s("link_method"),
    );
    let mut links = BTreeMap::new();
    for i in 0..app.num_rows() {
        links.insert(
            (no.value(i).to_string(), who.value(i).to_string()),
            code.is_valid(i).then(|| method.value(i).to_string()),
        );
    }
    let get = |n: &str, w: &str| {
        links
            .get(&(n.to_string(), w.to_string()))
            .cloned()
            .flatten()
    };
    assert_eq!(
        get("202310601862.9", "大同新荣石墨(集团)有限公司").as_deref(),
        Some("uscc")
    );
    assert_eq!(get("202310601862.9", "太原理工大学"), None);
    assert_eq!(
        get("202320601863.9", "大同轨道装备有限公司").as_deref(),
        Some("name")
    );
    assert_eq!(get("202320601863.9", "同名公司"), None);

    // Financing: a name links; 0.5亿 is exact; a missing deal id is derived.
    let fin = &out.tables["financing"]
        .collect()
        .expect("staged rows read back");
    let amount = fin
        .column(fin.schema().index_of("amount").expect("amount"))
        .as_primitive::<Decimal128Type>()
        .clone();
    let deal = fin
        .column(fin.schema().index_of("deal_id").expect("deal_id"))
        .as_string::<i32>()
        .clone();
    let derived: Vec<usize> = (0..fin.num_rows())
        .filter(|&i| deal.value(i).len() == 16)
        .collect();
    assert_eq!(derived.len(), 1);
    assert_eq!(amount.value(derived[0]), 5_000_000_000);

    // The other ledgers: a town by name or id is stored as its id; a region by name as
    // its province's code; amounts under 亿元 and 万元 exact; a stage reported without
    // its date loads with the date empty.
    let text = |table: &str, c: &str| {
        let t = &out.tables[table].collect().expect("staged rows read back");
        let a = t.column(t.schema().index_of(c).expect(c)).clone();
        (0..t.num_rows())
            .map(|i| {
                a.is_valid(i)
                    .then(|| a.as_string::<i32>().value(i).to_string())
            })
            .collect::<Vec<_>>()
    };
    let money = |table: &str, c: &str| {
        let t = &out.tables[table].collect().expect("staged rows read back");
        let a = t.column(t.schema().index_of(c).expect(c)).clone();
        (0..t.num_rows())
            .map(|i| {
                a.is_valid(i)
                    .then(|| a.as_primitive::<Decimal128Type>().value(i))
            })
            .collect::<Vec<_>>()
    };
    let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(
        text("project", "project_id"),
        some(&["XM-1", "XM-2", "XM-3"])
    );
    assert_eq!(
        text("project", "town_id"),
        vec![
            Some("xinrong_graphite".to_string()),
            Some("xinrong_graphite".to_string()),
            None
        ]
    );
    assert_eq!(
        text("project", "stage"),
        some(&["started", "signed", "in_production"])
    );
    assert_eq!(
        money("project", "planned_investment"),
        vec![
            Some(52_000_000_000),
            Some(30_000_000_000),
            Some(10_000_000_000)
        ]
    );
    assert_eq!(
        money("project", "completed_investment")[0],
        Some(12_000_000_000)
    );
    assert_eq!(
        text("investment_deal", "origin_code"),
        some(&["330000", "440300", "140200"])
    );
    assert_eq!(
        money("investment_deal", "contracted_amount"),
        vec![
            Some(20_000_000_000),
            Some(5_000_000_000),
            Some(3_000_000_000)
        ]
    );
    assert_eq!(
        money("investment_deal", "funds_in_place"),
        vec![Some(5_000_000_000), None, Some(3_000_000_000)]
    );
}

/// The hostile-values files: what sits exactly at a bound loads with its exact figure
/// (the rows beyond it are in expect.csv).
#[test]
fn values_at_the_bounds_load_exactly() {
    let out = run_corpus();
    let annual = &out.tables["enterprise_annual"]
        .collect()
        .expect("staged rows read back");
    let col = |name: &str| {
        annual
            .column(annual.schema().index_of(name).expect(name))
            .clone()
    };
    let year = col("year");
    let year = year.as_primitive::<arrow::datatypes::Int32Type>();
    let uscc = col("uscc");
    let uscc = uscc.as_string::<i32>();
    let revenue = col("revenue");
    let revenue = revenue.as_primitive::<Decimal128Type>();
    let employees = col("employees");
    let employees = employees.as_primitive::<arrow::datatypes::Int64Type>();
    let row = |code_prefix: &str, y: i32| {
        (0..annual.num_rows())
            .find(|&i| uscc.value(i).starts_with(code_prefix) && year.value(i) == y)
            .unwrap_or_else(|| panic!("no annual row {code_prefix} {y}"))
    };
    // 10,000,000 employees is the largest count; 10^15 元 the largest amount.
    let r = row("91140212MA0B00001", 2018);
    assert_eq!(employees.value(r), 10_000_000);
    assert_eq!(revenue.value(r), 10_000);
    let r = row("91140213MA0B00002", 2020);
    assert_eq!(revenue.value(r), 100_000_000_000_000_000);
    // 10000000亿 is 10^15 元 too; -0 employees is 0.
    let r = row("91140213MA0B00002", 2019);
    assert_eq!(revenue.value(r), 100_000_000_000_000_000);
    assert_eq!(employees.value(r), 0);
    // 36 decimals (all zero) is still a number.
    let r = row("91140214MA0B00003", 2020);
    assert_eq!(employees.value(r), 0);

    let ent = &out.tables["enterprise"]
        .collect()
        .expect("staged rows read back");
    let name = ent
        .column(ent.schema().index_of("name").expect("name"))
        .clone();
    let name = name.as_string::<i32>();
    let est = ent
        .column(
            ent.schema()
                .index_of("established_on")
                .expect("established_on"),
        )
        .clone();
    let est = est.as_primitive::<arrow::datatypes::Date32Type>();
    let established = |n: &str| {
        let i = (0..ent.num_rows())
            .find(|&i| name.value(i) == n)
            .unwrap_or_else(|| panic!("no enterprise {n}"));
        est.value_as_date(i).expect("a date")
    };
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
    assert_eq!(established("一九〇〇公司"), date(1900, 1, 1));
    assert_eq!(established("闰秒公司"), date(2023, 5, 1));
    assert_eq!(established("时区公司"), date(2023, 5, 1));
}
