//! The declared tests of the derived tables (`[tables.NAME.tests]` of
//! `schemas/marts.toml`), the way dbt tests its models: each test is a query for the
//! rows that break it, and it passes when there are none.
//!
//! Every table with a `key` is tested `unique` on it and `not_null` on each key
//! column; the rest is declared: `not_null`, `accepted_values`, `range`,
//! `relationships` and `expression` (SQL that ties marts together). A test is
//! error-level unless the table's `warn` list names it. `townstat run` runs them after
//! building the marts and before the run row makes them visible (an error-level
//! failure keeps the previous run visible); `townstat test` runs them on any committed
//! run.

use std::fmt::Write as _;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use townstat_domain::schema::{DeclaredTests, derived_labels};

use crate::error::{Error, Result};

/// How many failing rows of each test are kept (in `test_failure`) and shown.
pub const SAMPLE_ROWS: usize = 100;

/// Whether a failing test stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A failure keeps the run from publishing.
    Error,
    /// A failure is recorded; the run publishes.
    Warn,
}

impl Severity {
    /// The value stored in `test_result.severity`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// One declared test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// `table.kind` or `table.kind.column` (`town_year.range.cr1`), or `table.name`
    /// for an expression test.
    pub name: String,
    /// The table under test.
    pub table: String,
    /// `unique`, `not_null`, `accepted_values`, `range`, `relationships` or
    /// `expression`.
    pub kind: &'static str,
    /// Error or warn.
    pub severity: Severity,
    /// What must hold.
    pub description: String,
    /// The query for the rows that break it.
    pub sql: String,
}

/// How a test came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No row breaks it.
    Pass,
    /// Rows break an error-level test.
    Fail,
    /// Rows break a warn-level test.
    Warn,
    /// The table does not exist in this run (`enterprise_absent` before the first full
    /// registry snapshot): nothing to test, and said so.
    Absent,
}

impl Status {
    /// The value stored in `test_result.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Absent => "absent",
        }
    }
}

/// A test's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The test.
    pub case: TestCase,
    /// How it came out.
    pub status: Status,
    /// How many rows break it.
    pub failing_rows: u64,
    /// The first [`SAMPLE_ROWS`] of them, each a JSON object.
    pub sample: Vec<String>,
    /// How long the test took (tests run a few at a time).
    pub elapsed_ms: u64,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What the tests take from the pipeline's configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The grade names of `evaluation.toml` (`${grades}` in `accepted_values`); none
    /// means every grade must be null.
    pub grades: Vec<String>,
}

/// The tests one table declares, its key's first.
pub fn table_cases(
    table: &str,
    key: &[String],
    tests: &DeclaredTests,
    settings: &Settings,
) -> Result<Vec<TestCase>> {
    let bad = |m: String| Error::Output(format!("schemas/marts.toml, table {table}: {m}"));
    let t = quote(table);
    let mut out = vec![];
    let mut push = |name: String, kind: &'static str, description: String, sql: String| {
        out.push(TestCase {
            name,
            table: table.to_string(),
            kind,
            severity: Severity::Error,
            description,
            sql,
        })
    };
    if !key.is_empty() {
        let cols: Vec<String> = key.iter().map(|c| quote(c)).collect();
        let cols = cols.join(", ");
        push(
            format!("{table}.unique"),
            "unique",
            format!("one row per ({})", key.join(", ")),
            format!(
                "SELECT {cols}, count(*) AS duplicates FROM {t} GROUP BY {cols} HAVING count(*) > 1"
            ),
        );
    }
    let mut not_null: Vec<&String> = key.iter().collect();
    not_null.extend(tests.not_null.iter().filter(|c| !key.contains(c)));
    for c in not_null {
        push(
            format!("{table}.not_null.{c}"),
            "not_null",
            format!("{c} is never null"),
            format!("SELECT * FROM {t} WHERE {} IS NULL", quote(c)),
        );
    }
    for (c, declared) in &tests.accepted_values {
        if declared.is_empty() {
            return Err(bad(format!("accepted_values.{c} lists no value")));
        }
        let mut values: Vec<&str> = vec![];
        for v in declared {
            if v == "${grades}" {
                values.extend(settings.grades.iter().map(String::as_str));
            } else {
                values.push(v);
            }
        }
        let q = quote(c);
        let (description, sql) = if values.is_empty() {
            (
                format!("{c} is null (no value is configured)"),
                format!("SELECT * FROM {t} WHERE {q} IS NOT NULL"),
            )
        } else {
            let list: Vec<String> = values.iter().map(|v| literal(v)).collect();
            (
                format!("{c} is one of {}", values.join(", ")),
                format!(
                    "SELECT * FROM {t} WHERE {q} IS NOT NULL AND CAST({q} AS VARCHAR) NOT IN ({})",
                    list.join(", ")
                ),
            )
        };
        push(
            format!("{table}.accepted_values.{c}"),
            "accepted_values",
            description,
            sql,
        );
    }
    for (c, [min, max]) in &tests.range {
        // NaN bounds (TOML allows `nan`) or min above max: no value could pass.
        if min.is_nan() || max.is_nan() || min > max {
            return Err(bad(format!("range.{c}: [{min}, {max}] is empty")));
        }
        let v = format!("CAST({} AS DOUBLE)", quote(c));
        // An infinite bound is no bound; NaN breaks every range.
        let mut breaks = vec![format!("isnan({v})")];
        if min.is_finite() {
            breaks.push(format!("{v} < {min:?}"));
        }
        if max.is_finite() {
            breaks.push(format!("{v} > {max:?}"));
        }
        push(
            format!("{table}.range.{c}"),
            "range",
            format!("{c} lies in [{min}, {max}]"),
            format!("SELECT * FROM {t} WHERE {}", breaks.join(" OR ")),
        );
    }
    for (c, target) in &tests.relationships {
        let (other, other_col) = target
            .split_once('.')
            .ok_or_else(|| bad(format!("relationships.{c}: {target:?} is not table.column")))?;
        push(
            format!("{table}.relationships.{c}"),
            "relationships",
            format!("every {c} occurs in {target}"),
            format!(
                "SELECT * FROM {t} AS child WHERE child.{q} IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM {o} AS parent WHERE parent.{oc} = child.{q})",
                q = quote(c),
                o = quote(other),
                oc = quote(other_col)
            ),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for e in &tests.expression {
        if !names.insert(e.name.as_str()) {
            return Err(bad(format!("two expression tests are named {}", e.name)));
        }
        push(
            format!("{table}.{}", e.name),
            "expression",
            e.description.trim().to_string(),
            e.sql.trim().trim_end_matches(';').to_string(),
        );
    }
    for w in &tests.warn {
        let case = out
            .iter_mut()
            .find(|c| &c.name == w)
            .ok_or_else(|| bad(format!("warn names {w}, which is no test of the table")))?;
        case.severity = Severity::Warn;
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &out {
        if !seen.insert(c.name.as_str()) {
            return Err(bad(format!("two tests are named {}", c.name)));
        }
    }
    Ok(out)
}

/// Every declared test, table by table (in name order).
pub fn declared(settings: &Settings) -> Result<Vec<TestCase>> {
    let mut out = vec![];
    for (table, t) in &derived_labels().tables {
        out.extend(table_cases(table, &t.key, &t.tests, settings)?);
    }
    Ok(out)
}

/// Runs one test: counts the rows that break it and keeps the first few.
pub async fn run_case(ctx: &SessionContext, case: &TestCase) -> Result<Outcome> {
    let clock = std::time::Instant::now();
    if !ctx.table_exist(case.table.as_str())? {
        return Ok(Outcome {
            case: case.clone(),
            status: Status::Absent,
            failing_rows: 0,
            sample: vec![],
            elapsed_ms: 0,
        });
    }
    let failed =
        |e: datafusion::error::DataFusionError| Error::Output(format!("test {}: {e}", case.name));
    let df = ctx.sql(&case.sql).await.map_err(failed)?;
    let mut stream = df.execute_stream().await.map_err(failed)?;
    let mut failing_rows = 0u64;
    let mut kept: Vec<RecordBatch> = vec![];
    let mut kept_rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(failed)?;
        failing_rows += batch.num_rows() as u64;
        if kept_rows < SAMPLE_ROWS && batch.num_rows() > 0 {
            let take = (SAMPLE_ROWS - kept_rows).min(batch.num_rows());
            kept.push(batch.slice(0, take));
            kept_rows += take;
        }
    }
    let sample = rows_as_json(&kept)?;
    let status = match (failing_rows, case.severity) {
        (0, _) => Status::Pass,
        (_, Severity::Error) => Status::Fail,
        (_, Severity::Warn) => Status::Warn,
    };
    Ok(Outcome {
        case: case.clone(),
        status,
        failing_rows,
        sample,
        elapsed_ms: clock.elapsed().as_millis() as u64,
    })
}

/// Runs every declared test over the tables of a context, a few at a time (most are
/// small queries whose planning costs more than their scan), results in declared
/// order.
pub async fn run_all(ctx: &SessionContext, settings: &Settings) -> Result<Vec<Outcome>> {
    run_cases(ctx, &declared(settings)?).await
}

/// Runs the given tests, as [`run_all`] runs every declared one.
pub async fn run_cases(ctx: &SessionContext, cases: &[TestCase]) -> Result<Vec<Outcome>> {
    let at_once = std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4);
    type Running<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome>> + Send + 'a>>;
    let running: Vec<Running<'_>> = cases
        .iter()
        .map(|case| Box::pin(run_case(ctx, case)) as Running<'_>)
        .collect();
    futures::stream::iter(running)
        .buffered(at_once)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Each row as one JSON object with every key (nulls written as `null`).
fn rows_as_json(batches: &[RecordBatch]) -> Result<Vec<String>> {
    let mut out = vec![];
    for b in batches {
        let b = crate::output::lists_as_text(b)?;
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
        w.write(&b)
            .map_err(|e| Error::Output(format!("failing rows as JSON: {e}")))?;
        w.finish()
            .map_err(|e| Error::Output(format!("failing rows as JSON: {e}")))?;
        let text = String::from_utf8(w.into_inner())
            .map_err(|e| Error::Output(format!("failing rows as JSON: {e}")))?;
        out.extend(text.lines().map(str::to_string));
    }
    Ok(out)
}

/// Whether any error-level test failed.
pub fn blocking(outcomes: &[Outcome]) -> bool {
    outcomes.iter().any(|o| o.status == Status::Fail)
}

/// A summary line: `143 tests: 141 passed, 1 warning, 1 failed`.
pub fn summary(outcomes: &[Outcome]) -> String {
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let mut line = format!("{} tests: {} passed", outcomes.len(), count(Status::Pass));
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    if count(Status::Warn) > 0 {
        let _ = write!(
            line,
            ", {}",
            plural(count(Status::Warn), "warning", "warnings")
        );
    }
    if count(Status::Fail) > 0 {
        let _ = write!(line, ", {} failed", count(Status::Fail));
    }
    if count(Status::Absent) > 0 {
        let _ = write!(
            line,
            ", {} on tables this run does not have",
            count(Status::Absent)
        );
    }
    line
}

/// The failing tests, each with its number of rows and up to `rows` sample rows, as
/// lines for a terminal or an error message.
pub fn describe_failures(outcomes: &[Outcome], rows: usize) -> String {
    let mut out = String::new();
    for o in outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Fail | Status::Warn))
    {
        let _ = writeln!(
            out,
            "{} {}: {} failing row{} ({})",
            if o.status == Status::Fail {
                "FAIL"
            } else {
                "WARN"
            },
            o.case.name,
            o.failing_rows,
            if o.failing_rows == 1 { "" } else { "s" },
            o.case.description
        );
        for r in o.sample.iter().take(rows) {
            let _ = writeln!(out, "  {r}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_test_is_well_formed() {
        let cases = declared(&Settings::default()).expect("schemas/marts.toml tests");
        // Every derived table is tested, at least on its key.
        for (table, t) in &derived_labels().tables {
            assert!(
                cases
                    .iter()
                    .any(|c| &c.table == table && c.kind == "unique"),
                "{table} has no unique test"
            );
            assert!(!t.key.is_empty(), "{table} has no key");
        }
        let unique: std::collections::BTreeSet<&str> =
            cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(unique.len(), cases.len(), "test names are unique");
    }

    #[test]
    fn a_warn_name_must_exist() {
        let tests = DeclaredTests {
            warn: vec!["t.not_null.x".into()],
            ..Default::default()
        };
        let e = table_cases("t", &["k".into()], &tests, &Settings::default()).unwrap_err();
        assert!(e.to_string().contains("warn names t.not_null.x"), "{e}");
    }
}
