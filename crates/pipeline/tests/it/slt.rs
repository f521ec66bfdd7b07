//! SQL logic tests of the marts. The tiny hand-made dataset under `tests/slt/data` is
//! run through the real pipeline (ingest → Delta → marts) as of 2024-06-30, and every
//! `tests/slt/*.slt` file is checked against the session of the committed run. Every
//! expected value in those files was computed by hand from the data files (the
//! working is in the comments of each .slt file).

use std::path::PathBuf;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use chrono::NaiveDate;
use sqllogictest::{DBOutput, DefaultColumnType};
use townstat_ingest::Pipeline;
use townstat_pipeline::{RunOptions, run};
use townstat_query::Session;
use townstat_warehouse::Warehouse;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Db {
    session: Session,
}

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let batches = self
            .session
            .query(sql)
            .await
            .map_err(|e| SltError(e.to_string()))?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = vec![];
        let mut width = 0;
        for b in &batches {
            width = b.num_columns();
            let formatters: Vec<ArrayFormatter> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<_, _>>()
                .map_err(|e| SltError(e.to_string()))?;
            for r in 0..b.num_rows() {
                rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marts_match_hand_computed_values() {
    run_dataset("tests/slt/data/pipeline.toml", "tests/slt", 5).await;
}

/// The registry's designation history (an upgrade mid-year, a withdrawal, a town
/// without events) and the bureau's classification rules (size classes, 四上
/// thresholds) on their own hand-made data: `tests/slt/registry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_history_and_size_rules_match_hand_computed_values() {
    run_dataset("tests/slt/registry/pipeline.toml", "tests/slt/registry", 2).await;
}

/// The other ledgers (major projects, investment deals) over two runs: a project moves
/// stage and a report is re-sent between them, a deal's funds grow: `tests/slt/ledgers`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_and_investment_ledgers_match_hand_computed_values_over_two_runs() {
    run_datasets(
        &[
            "tests/slt/ledgers/first.toml",
            "tests/slt/ledgers/pipeline.toml",
        ],
        "tests/slt/ledgers",
        2,
    )
    .await;
}

async fn run_dataset(pipeline: &str, slt_dir: &str, min_files: usize) {
    run_datasets(&[pipeline], slt_dir, min_files).await;
}

/// Runs the pipelines one after the other into one warehouse (each run as of
/// 2024-06-30), then checks the .slt files against the last committed run.
async fn run_datasets(pipelines: &[&str], slt_dir: &str, min_files: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let warehouse = Warehouse::open(dir.path().to_str().expect("utf-8")).expect("warehouse");
    let mut last = None;
    for pipeline in pipelines {
        let pipeline = Pipeline::load(&repo().join(pipeline)).expect("pipeline");
        let report = run(
            &warehouse,
            &pipeline,
            &RunOptions {
                cluster: None,
                as_of: NaiveDate::from_ymd_opt(2024, 6, 30).expect("date"),
                force: false,
                progress: None,
                // Every step's result, the marts' too, goes through the scratch
                // files (a real run keeps those under 128 MiB in memory): the .slt
                // values check that path (the marts tested, committed and exported
                // from their files); the CLI tests and the demo check memory's.
                scratch_min: Some(1),
            },
        )
        .await
        .expect("run");
        assert_eq!(
            report.reasons.len(),
            0,
            "the slt data is clean: {:?}",
            report.reasons
        );
        last = Some(report);
    }
    let report = last.expect("at least one pipeline");

    // Every table and column a SQL user sees carries a Chinese label.
    let session = townstat_query::open_session(&warehouse, None)
        .await
        .expect("session");
    for table in report.versions.keys() {
        assert!(
            townstat_domain::schema::table_label(table).is_some(),
            "table {table} has no label"
        );
        let df = session.ctx.table(table.as_str()).await.expect("table");
        for f in df.schema().fields() {
            assert!(
                townstat_domain::schema::column_label(table, f.name()).is_some(),
                "{table}.{} has no label",
                f.name()
            );
            // Every mart column also has a definition (schemas/glossary.toml), shown by
            // the shell's \d+ and the report's 指标解释. Source-like tables (the
            // registry history, the data-quality lists) are defined by their schemas.
            let derived = townstat_domain::schema::derived_labels()
                .tables
                .contains_key(table.as_str());
            if derived
                && ![
                    "enterprise_history",
                    "enterprise_absent",
                    "dq_unlinked_applicant",
                ]
                .contains(&table.as_str())
            {
                assert!(
                    townstat_domain::schema::definition(f.name()).is_some(),
                    "{table}.{} has no definition in schemas/glossary.toml",
                    f.name()
                );
            }
        }
    }

    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(slt_dir))
        .expect(slt_dir)
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= min_files, "slt files found: {files:?}");
    for file in files {
        let wh = warehouse.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let wh = wh.clone();
            async move {
                let session = townstat_query::open_session(&wh, None)
                    .await
                    .map_err(|e| SltError(e.to_string()))?;
                Ok::<_, SltError>(Db { session })
            }
        });
        runner.with_column_validator(|_, _| true);
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {e}", file.display());
        }
    }
}
