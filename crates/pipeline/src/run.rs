//! One nightly run, step by step, in the order that keeps it atomic for readers:
//! 0. check the configuration and everything it references (`check`): a bad one
//!    stops the run before it writes anything, not even the lock file;
//! 1. take the lock; restore the tables a killed run left past the last committed
//!    run (`recover`); read that committed state (the state readers see now);
//! 2. ingest every file against that state's registry (nothing written yet);
//! 3. MERGE the source tables by key, replace the reference tables, append the
//!    quarantine, warnings and file records;
//! 4. build the marts and run their declared tests (`schemas/marts.toml`): an
//!    error-level failure ends the run here, its tables restored, with a run row of
//!    status `failed` that names the previous run's tables and the test tables
//!    holding the failing rows;
//! 5. append the run row naming every table's version: only now do readers move.
//!
//! A run that fails before step 5 restores the tables it wrote to the committed
//! versions before it releases the lock (one killed outright is restored by the next
//! run), so outside Delta readers, which read latest versions, are back on the
//! committed state too. The next run starts from the last committed state,
//! re-ingests the same files (their hashes were never recorded as loaded), and MERGE
//! makes the result the same as an uninterrupted run.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::record_batch::RecordBatch;
use chrono::{NaiveDate, Utc};
use townstat_domain::schema;
use townstat_ingest::arrow_out::{arrow_schema, date32};
use townstat_ingest::{FileReport, FileStatus, IngestOptions, Pipeline, Registry, TableRows};
use townstat_query::mart_tests::{self, Outcome, Status};
use townstat_query::marts::MartRows;
use townstat_warehouse::Warehouse;

use crate::check::Checked;
use crate::error::{Error, Result};
use crate::reference;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every file was read.
    Succeeded,
    /// Finished, but some files were rejected whole (exit status 3).
    Partial,
}

impl RunStatus {
    /// The value stored in `run.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
        }
    }
}

/// Told what the run is doing, for a progress display.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// The two halves of a run, for settings of the whole process that suit one better
/// than the other: the binary tunes its allocator by them (`crates/cli/src/main.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading, validating and committing the source files: memory streams through.
    Ingest,
    /// Building the marts: each step allocates large buffers, frees them, and the
    /// next step allocates them again.
    Marts,
}

static PHASE_HOOK: std::sync::OnceLock<fn(Phase)> = std::sync::OnceLock::new();

/// Sets the function a run calls as it enters each phase (the first call wins; a
/// process has one).
pub fn on_phase(hook: fn(Phase)) {
    let _ = PHASE_HOOK.set(hook);
}

fn enter(phase: Phase) {
    if let Some(hook) = PHASE_HOOK.get() {
        hook(phase);
    }
}

/// Options of a run.
#[derive(Clone)]
pub struct RunOptions {
    /// The run date ("now" for future-date checks).
    pub as_of: NaiveDate,
    /// Re-read files whose content an earlier run already loaded.
    pub force: bool,
    /// Progress messages (a terminal spinner), if anyone watches.
    pub progress: Option<Progress>,
    /// A session on a Ballista cluster to build the marts on (`--cluster`); `None`
    /// builds them in this process.
    pub cluster: Option<datafusion::prelude::SessionContext>,
    /// The smallest staging or intermediate mart result kept on disk instead of in
    /// memory; `None`: `TOWNSTAT_SCRATCH_MIN` or 64 MiB ([`scratch_min_bytes`]).
    pub scratch_min: Option<usize>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// One report per source file.
    pub files: Vec<FileReport>,
    /// Table versions the run committed.
    pub versions: BTreeMap<String, i64>,
    /// Quarantined rows per reason code.
    pub reasons: BTreeMap<String, i64>,
    /// Rows loaded per table.
    pub loaded: BTreeMap<String, usize>,
    /// What became of the yearly report of `[report]`: the files written (relative to
    /// the export folder) or why there is none; empty without `[report]`.
    pub report: Option<String>,
    /// The marts' declared tests (none failed at error level, or the run would have
    /// failed).
    pub tests: Vec<Outcome>,
}

/// A run stopped by failing error-level tests of its marts.
#[derive(Debug, Clone)]
pub struct FailedTests {
    /// The run's id (its record has status `failed`).
    pub run_id: String,
    /// When it started.
    pub started: chrono::DateTime<Utc>,
    /// Its run date.
    pub as_of: NaiveDate,
    /// The pipeline file.
    pub pipeline: String,
    /// Every test's result.
    pub outcomes: Vec<Outcome>,
    /// Whether the failed run's record and test rows were committed.
    pub recorded: bool,
}

impl std::fmt::Display for FailedTests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = self
            .outcomes
            .iter()
            .filter(|o| o.status == Status::Fail)
            .count();
        writeln!(
            f,
            "run {} failed {failed} error-level test{} of the marts ({}); nothing was \
             published: readers still see the previous run's figures",
            self.run_id,
            if failed == 1 { "" } else { "s" },
            mart_tests::summary(&self.outcomes)
        )?;
        write!(f, "{}", mart_tests::describe_failures(&self.outcomes, 3))?;
        if self.recorded {
            write!(
                f,
                "every failing row (up to {} per test): townstat sql \"SELECT * FROM \
                 test_failure WHERE run_id = '{}'\"",
                mart_tests::SAMPLE_ROWS,
                self.run_id
            )
        } else {
            write!(f, "the failed run could not be recorded (see the log)")
        }
    }
}

/// A new run id: the UTC start time, sortable, plus a random suffix.
pub fn new_run_id() -> String {
    let now = Utc::now();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &suffix[..6])
}

async fn committed_registry(
    warehouse: &Warehouse,
    last: Option<&townstat_warehouse::CommittedRun>,
) -> Result<(Registry, Vec<String>, BTreeMap<String, i64>)> {
    let mut registry = Registry::default();
    let mut loaded_hashes = vec![];
    let Some(run) = last else {
        return Ok((registry, loaded_hashes, BTreeMap::new()));
    };
    let session = townstat_query::open_session(warehouse, Some(&run.run_id)).await?;
    for b in session.query("SELECT uscc, name FROM enterprise").await? {
        let u = townstat_warehouse::text_column(&b, 0)?;
        let n = townstat_warehouse::text_column(&b, 1)?;
        for i in 0..b.num_rows() {
            registry.add(u.value(i), Some(n.value(i)));
        }
    }
    for b in session
        .query("SELECT DISTINCT content_hash FROM ingest_run WHERE status = 'loaded'")
        .await?
    {
        let h = townstat_warehouse::text_column(&b, 0)?;
        for i in 0..b.num_rows() {
            loaded_hashes.push(h.value(i).to_string());
        }
    }
    Ok((registry, loaded_hashes, run.versions.clone()))
}

fn run_batch(
    run_id: &str,
    started: chrono::DateTime<Utc>,
    status: &str,
    as_of: NaiveDate,
    pipeline: &str,
    versions: &BTreeMap<String, i64>,
) -> Result<RecordBatch> {
    let t = schema::table("run").ok_or_else(|| Error::Internal("no run schema".into()))?;
    let s = |v: &str| -> ArrayRef {
        let mut b = StringBuilder::new();
        b.append_value(v);
        Arc::new(b.finish())
    };
    let ts = |v: chrono::DateTime<Utc>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        b.append_value(v.timestamp_micros());
        Arc::new(b.finish())
    };
    let mut d = Date32Builder::new();
    d.append_value(date32(as_of));
    let versions = serde_json::to_string(versions).map_err(|e| Error::Internal(e.to_string()))?;
    RecordBatch::try_new(
        arrow_schema(t),
        vec![
            s(run_id),
            ts(started),
            ts(Utc::now()),
            s(status),
            Arc::new(d.finish()),
            s(pipeline),
            s(&versions),
        ],
    )
    .map_err(|e| Error::Internal(format!("run row: {e}")))
}

/// Runs a pipeline into a warehouse: checks its configuration
/// ([`crate::check::precheck`]), then [`run_checked`].
pub async fn run(
    warehouse: &Warehouse,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<RunReport> {
    let checked = crate::check::precheck(pipeline, opts.as_of).await?;
    run_checked(warehouse, pipeline, &checked, opts).await
}

/// Runs a pipeline whose configuration passed [`crate::check::precheck`].
pub async fn run_checked(
    warehouse: &Warehouse,
    pipeline: &Pipeline,
    checked: &Checked,
    opts: &RunOptions,
) -> Result<RunReport> {
    let run_id = new_run_id();
    let lock = crate::lock::RunLock::take(warehouse, &run_id).await?;
    let report = match crate::recover::restore_if_pending(warehouse).await {
        Ok(()) => {
            // As a task of its own: a panic in it becomes an error here, so the
            // error path below still restores the tables; and it runs on a runtime
            // worker, whose stack size the binary chooses (32 MiB in townstat), not
            // on the thread that blocks on this future (a main thread has 8 MiB, and
            // DataFusion's planning recurses deeply).
            let (wh, pl, ch, op) = (
                warehouse.clone(),
                pipeline.clone(),
                checked.clone(),
                opts.clone(),
            );
            tokio::spawn(async move { run_holding_lock(&wh, &pl, &ch, &op, run_id).await })
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("the run's task ended: {e}"))))
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &report {
        // Only a run that wrote left the marker; then its versions go back to the
        // committed ones before another run or maintenance can take the lock.
        match crate::recover::pending(warehouse).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                let clock = std::time::Instant::now();
                match crate::recover::restore(warehouse).await {
                    Ok(restored) => tracing::warn!(
                        error = %e,
                        tables = restored.len(),
                        elapsed_ms = clock.elapsed().as_millis() as u64,
                        "run failed; its tables were restored to the last committed run"
                    ),
                    Err(r) => tracing::error!(
                        error = %e,
                        restore_error = %r,
                        "run failed and restoring its tables failed too; the next run or \
                         townstat maintain restores them"
                    ),
                }
            }
            Err(r) => {
                tracing::error!(error = %e, marker_error = %r, "run failed; cannot read the pending marker")
            }
        }
    }
    let report = match report {
        Err(Error::TestsFailed(mut failed)) => {
            // The tables are back on the committed run; the failed run's record and
            // its failing rows go on top of it, for diagnosis.
            match record_failed_run(warehouse, &failed).await {
                Ok(()) => failed.recorded = true,
                Err(e) => tracing::error!(
                    run_id = failed.run_id,
                    error = %e,
                    "could not record the run that failed its tests"
                ),
            }
            Err(Error::TestsFailed(failed))
        }
        other => other,
    };
    // Out of memory anywhere in the run (a hash join's table cannot spill, in the
    // marts or in the history): say what to change. The error comes as a statement's
    // own (`Sql`) or as a scratch file's write (`Output`).
    let report = report.map_err(|e| match e {
        Error::Query(q) if opts.cluster.is_none() => {
            let message = match &q {
                townstat_query::Error::Output(message) => message.clone(),
                other => other.to_string(),
            };
            if !message.contains("Resources exhausted") {
                return Error::Query(q);
            }
            let limit = townstat_query::session::run_memory_limit();
            let pool = if limit >= 1 << 20 {
                format!("{} MiB", limit >> 20)
            } else {
                format!("{} KiB", limit >> 10)
            };
            Error::Query(townstat_query::Error::Output(format!(
                "{message} (the run's memory pool is {pool}: set TOWNSTAT_MEMORY_LIMIT \
                 higher, e.g. 4GiB)"
            )))
        }
        e => e,
    });
    lock.release().await;
    report
}

/// Commits the record of a run stopped by its tests: `test_result` and `test_failure`
/// rows appended, and a run row of status `failed` naming the last committed run's
/// versions of every other table. Readers that follow the latest run row therefore see
/// the same figures as before, and the failing rows beside them. Holding the lock,
/// after the run's tables were restored.
async fn record_failed_run(warehouse: &Warehouse, failed: &FailedTests) -> Result<()> {
    // A marker still there means the restore failed: the tables are not on the
    // committed run, and the marker must stay for the next run to restore them. A
    // record on top would clear it.
    if let Some(left) = crate::recover::pending(warehouse).await? {
        return Err(Error::Internal(format!(
            "the run's tables were not restored ({left}); the next run restores them"
        )));
    }
    let runs = warehouse.runs().await?;
    let committed: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
    let mut versions = runs.last().map(|r| r.versions.clone()).unwrap_or_default();
    crate::recover::mark(warehouse, &failed.run_id).await?;
    let (results, failures) = test_batches(&failed.run_id, &failed.outcomes)?;
    versions.insert(
        "test_result".to_string(),
        warehouse
            .append_for_run("test_result", results, &committed)
            .await?,
    );
    versions.insert(
        "test_failure".to_string(),
        warehouse
            .append_for_run("test_failure", failures, &committed)
            .await?,
    );
    let record = run_batch(
        &failed.run_id,
        failed.started,
        "failed",
        failed.as_of,
        &failed.pipeline,
        &versions,
    )?;
    warehouse.append("run", record).await?;
    if let Err(e) = crate::recover::clear(warehouse).await {
        tracing::warn!(error = %e, "could not remove the pending marker");
    }
    tracing::error!(
        run_id = failed.run_id,
        failed = failed
            .outcomes
            .iter()
            .filter(|o| o.status == Status::Fail)
            .count(),
        "run failed its tests; recorded with status failed, the previous run stays visible"
    );
    Ok(())
}

/// The `test_result` rows (one per test) and `test_failure` rows (the sample of
/// failing rows of each failed or warning test) of a run.
pub fn test_batches(run_id: &str, outcomes: &[Outcome]) -> Result<(RecordBatch, RecordBatch)> {
    use arrow::array::Int64Builder;
    let schema_of = |name: &str| {
        schema::table(name)
            .map(arrow_schema)
            .ok_or_else(|| Error::Internal(format!("no {name} schema")))
    };
    let text = |values: Vec<&str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for v in values {
            b.append_value(v);
        }
        Arc::new(b.finish())
    };
    let n = outcomes.len();
    let mut failing = Int64Builder::new();
    let mut elapsed = Int64Builder::new();
    for o in outcomes {
        failing.append_value(o.failing_rows as i64);
        elapsed.append_value(o.elapsed_ms as i64);
    }
    let results = RecordBatch::try_new(
        schema_of("test_result")?,
        vec![
            text(vec![run_id; n]),
            text(outcomes.iter().map(|o| o.case.name.as_str()).collect()),
            text(outcomes.iter().map(|o| o.case.table.as_str()).collect()),
            text(outcomes.iter().map(|o| o.case.kind).collect()),
            text(outcomes.iter().map(|o| o.case.severity.as_str()).collect()),
            text(outcomes.iter().map(|o| o.status.as_str()).collect()),
            Arc::new(failing.finish()),
            Arc::new(elapsed.finish()),
            text(
                outcomes
                    .iter()
                    .map(|o| o.case.description.as_str())
                    .collect(),
            ),
            text(outcomes.iter().map(|o| o.case.sql.as_str()).collect()),
        ],
    )
    .map_err(|e| Error::Internal(format!("test_result rows: {e}")))?;
    let rows: Vec<(&Outcome, usize, &str)> = outcomes
        .iter()
        .flat_map(|o| {
            o.sample
                .iter()
                .enumerate()
                .map(move |(i, r)| (o, i + 1, r.as_str()))
        })
        .collect();
    let mut numbers = Int64Builder::new();
    for (_, i, _) in &rows {
        numbers.append_value(*i as i64);
    }
    let failures = RecordBatch::try_new(
        schema_of("test_failure")?,
        vec![
            text(vec![run_id; rows.len()]),
            text(rows.iter().map(|(o, _, _)| o.case.name.as_str()).collect()),
            text(rows.iter().map(|(o, _, _)| o.case.table.as_str()).collect()),
            text(
                rows.iter()
                    .map(|(o, _, _)| o.case.severity.as_str())
                    .collect(),
            ),
            Arc::new(numbers.finish()),
            text(rows.iter().map(|(_, _, r)| *r).collect()),
        ],
    )
    .map_err(|e| Error::Internal(format!("test_failure rows: {e}")))?;
    Ok((results, failures))
}

async fn run_holding_lock(
    warehouse: &Warehouse,
    pipeline: &Pipeline,
    checked: &Checked,
    opts: &RunOptions,
    run_id: String,
) -> Result<RunReport> {
    let started = Utc::now();
    let clock = std::time::Instant::now();
    let root = warehouse.local_root();
    // A commit point: a test can kill the run here (TOWNSTAT_PAUSE_AT) or make it
    // fail here (TOWNSTAT_FAIL_AT).
    let pause = |point: &str| {
        crate::lock::pause_point(root.as_deref(), point);
        crate::lock::fail_point(point)
    };
    tracing::info!(run_id, as_of = %opts.as_of, "run started");
    enter(Phase::Ingest);
    let runs = warehouse.runs().await?;
    let committed: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
    let (registry, loaded_hashes, mut versions) =
        committed_registry(warehouse, runs.last()).await?;
    let versions_before = versions.clone();
    let towns = &checked.towns;

    let ingest_pipeline = pipeline.clone();
    let id = run_id.clone();
    let as_of = opts.as_of;
    let force = opts.force;
    let progress = opts.progress.clone();
    let say = |m: &str| {
        if let Some(p) = &opts.progress {
            p(m)
        }
    };
    let town_index = townstat_domain::town::TownIndex::new(towns);
    // Valid rows wait for the commit in this run's staging folder, not in memory.
    let stage = Staging::create(root.as_deref(), &run_id)?;
    let stage_path = stage.path.clone();
    let mut output = tokio::task::spawn_blocking(move || {
        let already = move |h: &str| !force && loaded_hashes.iter().any(|x| x == h);
        let on_file = move |f: &str| {
            if let Some(p) = &progress {
                p(&format!("reading {f}"))
            }
        };
        townstat_ingest::ingest(
            &ingest_pipeline,
            &IngestOptions {
                run_id: &id,
                as_of,
                already_loaded: &already,
                on_file: &on_file,
                towns: &town_index,
                stage: &stage_path,
            },
            registry,
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("ingest task: {e}")))??;
    for f in &output.files {
        // A file rejected whole lost every row it had: the operator must see it.
        if f.status == townstat_ingest::FileStatus::Rejected {
            tracing::warn!(
                file = f.source_file,
                kind = f.kind,
                reason = f.message.as_deref().unwrap_or(""),
                "file rejected whole"
            );
            continue;
        }
        tracing::info!(
            file = f.source_file,
            status = f.status.as_str(),
            read = f.rows_read,
            loaded = f.rows_loaded,
            duplicate = f.rows_duplicate,
            quarantined = f.rows_quarantined,
            detail = f.message.as_deref().unwrap_or(""),
            "file"
        );
    }

    tracing::info!(elapsed_ms = clock.elapsed().as_millis() as u64, "ingested");
    let commit_clock = std::time::Instant::now();
    pause("after_ingest")?;
    // From here on tables get versions no run records until the run row: the marker
    // tells a later run to restore them if this one is killed.
    crate::recover::mark(warehouse, &run_id).await?;
    let mut loaded = BTreeMap::new();
    for (name, rows) in &output.tables {
        let t = schema::table(name).ok_or_else(|| Error::Internal(format!("no schema {name}")))?;
        loaded.insert(name.clone(), rows.num_rows());
        say(&format!("merging {name}"));
        let v = match rows {
            // A patent's applicants are replaced as a whole (see replace_groups).
            TableRows::Memory(batch) if name == "patent_applicant" => {
                warehouse
                    .replace_groups(name, batch.clone(), "application_no")
                    .await?
            }
            TableRows::Memory(batch) => warehouse.merge(name, batch.clone(), &t.key).await?,
            TableRows::Staged(staged) => {
                warehouse
                    .merge_stream(name, stream_of(staged), &t.key)
                    .await?
            }
        };
        tracing::info!(table = name, rows = rows.num_rows(), version = v, "merged");
        versions.insert(name.clone(), v);
    }
    pause("after_source_tables")?;
    let previous = &versions_before;
    let registry = townstat_domain::schema::registry_kind().name.as_str();
    // The ingest keeps the registry's rows in memory.
    let registry_rows = match output.tables.get(registry) {
        Some(TableRows::Memory(batch)) => Some(batch),
        _ => None,
    };
    if let Some(loaded_enterprises) = registry_rows
        && let Some(history) =
            crate::history::update(warehouse, previous, loaded_enterprises, opts.as_of, &run_id)
                .await?
    {
        versions.insert(
            "enterprise_history".to_string(),
            warehouse.overwrite("enterprise_history", history).await?,
        );
    }
    // A full registry snapshot, read whole: flag registered enterprises it lacks.
    let snapshot_read = pipeline.file.sources.iter().any(|s| s.full_snapshot)
        && output
            .files
            .iter()
            .filter(|f| f.kind == registry)
            .all(|f| f.status == FileStatus::Loaded);
    if snapshot_read
        && let Some(rows) = registry_rows
        && let Some(absent) =
            crate::history::absent(warehouse, previous, rows, opts.as_of, &run_id).await?
    {
        versions.insert(
            "enterprise_absent".to_string(),
            warehouse
                .append_for_run("enterprise_absent", absent, &committed)
                .await?,
        );
    }
    // The loaded rows are committed and history has read them: free them before the
    // marts, which need the memory (at scale 100 they are gigabytes), and the staged
    // files with them.
    output.tables.clear();
    drop(stage);
    let reference_tables = [
        ("industry_code", reference::industry_codes()?),
        ("division", reference::divisions()?),
        ("town", reference::towns(towns)?),
        ("town_roster", reference::rosters(towns)?),
        (
            "town_history",
            reference::town_history(&checked.town_history)?,
        ),
        (
            "above_size_rule",
            reference::above_size_rules(&checked.size_rules)?,
        ),
        (
            "size_class_rule",
            reference::size_class_rules(&checked.size_rules)?,
        ),
        ("declared_kind", reference::declared_kinds()?),
    ];
    // The registry and the code lists go out with the marts, so that BI tools reading
    // the Parquet exports get names (towns, counties, industries), not just ids.
    let mut exported_reference: Vec<(String, MartRows)> = vec![];
    for (name, batch) in reference_tables {
        if name != "town_roster" && name != "declared_kind" {
            exported_reference.push((name.to_string(), MartRows::Memory(vec![batch.clone()])));
        }
        versions.insert(name.to_string(), warehouse.overwrite(name, batch).await?);
    }
    pause("before_marts")?;
    tracing::info!(
        elapsed_ms = commit_clock.elapsed().as_millis() as u64,
        "source tables committed"
    );
    say("building marts");
    enter(Phase::Marts);
    // The marts, from exactly the versions this run leaves.
    let marts_clock = std::time::Instant::now();
    let (marts, _scratch) = build_marts(
        warehouse,
        checked,
        &versions,
        &run_id,
        opts.as_of,
        opts.cluster.as_ref(),
        opts.scratch_min,
    )
    .await?;
    tracing::info!(
        elapsed_ms = marts_clock.elapsed().as_millis() as u64,
        "marts built"
    );
    let mut marts = marts;
    crate::fault::corrupt_marts(&mut marts)?;
    say("testing marts");
    let tests_clock = std::time::Instant::now();
    let settings = mart_tests::Settings {
        grades: checked
            .grading
            .grades
            .iter()
            .map(|g| g.name.clone())
            .collect(),
    };
    let outcomes = test_marts(warehouse, &versions, &marts, &settings).await?;
    for o in outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Fail | Status::Warn))
    {
        tracing::warn!(
            test = o.case.name,
            severity = o.case.severity.as_str(),
            failing_rows = o.failing_rows,
            first = o.sample.first().map(String::as_str).unwrap_or(""),
            "mart test failed"
        );
    }
    tracing::info!(
        elapsed_ms = tests_clock.elapsed().as_millis() as u64,
        result = mart_tests::summary(&outcomes),
        "marts tested"
    );
    if mart_tests::blocking(&outcomes) {
        return Err(Error::TestsFailed(Box::new(FailedTests {
            run_id: run_id.clone(),
            started,
            as_of: opts.as_of,
            pipeline: pipeline.path.display().to_string(),
            outcomes,
            recorded: false,
        })));
    }
    // A local run writes the marts' export files beside their Delta writes, on a
    // thread of its own (export::Staged); they are published after the commit point.
    let staged = root
        .as_deref()
        .map(|root| crate::export::Staged::start(root, &run_id, marts.clone()))
        .transpose()?;
    for (name, rows) in &marts {
        versions.insert(
            name.clone(),
            warehouse.overwrite_stream(name, rows.row_stream()).await?,
        );
    }
    pause("after_marts")?;
    let (test_results, test_failures) = test_batches(&run_id, &outcomes)?;
    let system = [
        ("quarantine", output.quarantine_batch(&run_id)?),
        ("ingest_warning", output.warning_batch(&run_id)?),
        ("ingest_run", output.ingest_run_batch(&run_id)?),
        ("test_result", test_results),
        ("test_failure", test_failures),
    ];
    for (name, batch) in system {
        versions.insert(
            name.to_string(),
            warehouse.append_for_run(name, batch, &committed).await?,
        );
    }

    let status = if output
        .files
        .iter()
        .any(|f| f.status == FileStatus::Rejected)
    {
        RunStatus::Partial
    } else {
        RunStatus::Succeeded
    };
    let record = run_batch(
        &run_id,
        started,
        status.as_str(),
        opts.as_of,
        &pipeline.path.display().to_string(),
        &versions,
    )?;
    pause("before_run_record")?;
    // The commit point.
    warehouse.append("run", record).await?;
    // Every table's latest version is now the one the run row names. A failure to
    // remove the marker costs the next start one needless comparison, nothing more.
    if let Err(e) = crate::recover::clear(warehouse).await {
        tracing::warn!(error = %e, "could not remove the pending marker");
    }
    tracing::info!(
        run_id,
        status = status.as_str(),
        elapsed_ms = clock.elapsed().as_millis() as u64,
        // How long outside readers of latest versions could see tables of this run
        // that no run row named yet: from the first table commit to the run row.
        uncommitted_window_ms = commit_clock.elapsed().as_millis() as u64,
        "run committed"
    );
    pause("after_run_record")?;
    // The yearly report reads the committed marts of this run, like `townstat report`.
    let (extras, report_note) = match &pipeline.file.report {
        Some(config) => report_files(warehouse, &run_id, config).await?,
        None => (vec![], None),
    };
    // Exports are published after the commit: copies of committed marts (and of the
    // reference tables that name their ids), swapped in whole.
    match staged {
        Some(staged) => staged.publish(&exported_reference, &extras, || {
            crate::lock::pause_point(root.as_deref(), "during_export")
        })?,
        None => {
            let mut exported = marts;
            exported.extend(exported_reference);
            crate::export::publish_to_store(warehouse, &run_id, &exported, &extras).await?
        }
    }

    let mut reasons = BTreeMap::new();
    for q in &output.quarantine {
        for r in &q.reasons {
            *reasons.entry(r.clone()).or_insert(0) += 1;
        }
    }
    Ok(RunReport {
        run_id,
        status,
        files: output.files,
        versions,
        reasons,
        loaded,
        report: report_note,
        tests: outcomes,
    })
}

/// Runs the marts' declared tests on the marts a run just built (in memory or in its
/// scratch folder, not yet written) and the tables it committed so far (sources,
/// history, reference).
async fn test_marts(
    warehouse: &Warehouse,
    versions: &BTreeMap<String, i64>,
    marts: &[(String, MartRows)],
    settings: &mart_tests::Settings,
) -> Result<Vec<Outcome>> {
    let ctx =
        townstat_query::session::context_with_limit(townstat_query::session::run_memory_limit());
    // Only the committed tables some test reads are opened (the registry, code lists,
    // history): opening every table costs more than most tests.
    let cases = mart_tests::declared(settings)?;
    let read_by_tests = |name: &str| {
        cases
            .iter()
            .any(|c| c.table == name || townstat_query::marts::mentions(&c.sql, name))
    };
    let committed: BTreeMap<String, i64> = versions
        .iter()
        .filter(|(name, _)| !marts.iter().any(|(m, _)| m == *name) && read_by_tests(name))
        .map(|(n, v)| (n.clone(), *v))
        .collect();
    warehouse.register(&ctx, &committed).await?;
    for (name, rows) in marts {
        let table = rows
            .provider()
            .map_err(|e| Error::Internal(format!("{name}: {e}")))?;
        ctx.register_table(name.as_str(), table)
            .map_err(|e| Error::Internal(format!("{name}: {e}")))?;
    }
    Ok(mart_tests::run_cases(&ctx, &cases).await?)
}

/// The yearly report of a committed run as export files (`report/<name>`), and a line
/// saying what was written. A run without annual returns, or without the configured
/// year, has no report: that is said in the line (and logged as a warning), and the
/// run's exports go on without it. Any other failure fails the run's export.
async fn report_files(
    warehouse: &Warehouse,
    run_id: &str,
    config: &townstat_ingest::pipeline::ReportConfig,
) -> Result<(Vec<(String, Vec<u8>)>, Option<String>)> {
    let formats: townstat_report::Formats = config.format.parse().map_err(Error::Config)?;
    let session = townstat_query::open_session(warehouse, Some(run_id)).await?;
    let failed = |e: townstat_report::Error| Error::Internal(format!("the yearly report: {e}"));
    let year = match townstat_report::choose_year(&session, config.year).await {
        Ok(y) => y,
        Err(townstat_report::Error::Usage(why)) => {
            tracing::warn!(reason = %why, "no yearly report");
            return Ok((vec![], Some(format!("report: none ({why})"))));
        }
        Err(e) => return Err(failed(e)),
    };
    let report = townstat_report::build(&session, year)
        .await
        .map_err(failed)?;
    let files: Vec<(String, Vec<u8>)> = townstat_report::render(&report, formats)
        .map_err(failed)?
        .into_iter()
        .map(|(name, bytes)| (format!("report/{name}"), bytes))
        .collect();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let note = format!("report: {} in the run's exports", names.join(", "));
    Ok((files, Some(note)))
}

async fn build_marts(
    warehouse: &Warehouse,
    checked: &Checked,
    versions: &BTreeMap<String, i64>,
    run_id: &str,
    as_of: NaiveDate,
    cluster: Option<&datafusion::prelude::SessionContext>,
    scratch_min: Option<usize>,
) -> Result<(Vec<(String, MartRows)>, Option<LocalScratch>)> {
    use chrono::Datelike;
    use townstat_query::marts;
    let components = checked.components.clone();
    let targets = checked.targets.clone();
    // A local build's scratch folder holds the large marts until the run has
    // exported them: the guard removes it when the run is done, failed or not.
    let mut guard = None;
    let (ctx, scratch) = match cluster {
        None => {
            let ctx = townstat_query::session::context_with_limit(
                townstat_query::session::run_memory_limit(),
            );
            // The build reads source strings as plain strings, not string views: the
            // joins of the marts then copy the strings they keep instead of holding
            // views into every input buffer, which DataFusion counts once per batch
            // (at scale 100 that made sorts and repartitions spill; rebuilds took
            // 1.3–1.7× as long; bench/RESULTS.md). `DATAFUSION_EXECUTION_PARQUET_…` in the
            // environment does not override this; the session settings of `sql` and
            // `serve` are left as they are.
            ctx.state_ref()
                .write()
                .config_mut()
                .options_mut()
                .execution
                .parquet
                .schema_force_view_types = false;
            warehouse.register(&ctx, versions).await?;
            let (scratch, folder) = local_scratch(warehouse, run_id, scratch_min)?;
            guard = Some(folder);
            (ctx, Some(scratch))
        }
        Some(ctx) => {
            // The cluster reads the pinned versions' files and the steps' results from
            // the warehouse's store.
            let ctx = ctx.clone();
            warehouse
                .clone()
                .with_file_tables()
                .register(&ctx, versions)
                .await?;
            let (store, prefix) = warehouse.root_store()?;
            let folder = format!("_scratch/{run_id}/");
            let url = warehouse
                .root()
                .join(&folder)
                .map_err(|e| Error::Internal(format!("scratch folder: {e}")))?;
            let prefix = prefix.clone().join("_scratch").join(run_id);
            let scratch = marts::Scratch {
                store,
                prefix,
                url,
                min_bytes: 0,
            };
            (ctx, Some(scratch))
        }
    };
    let scratch_prefix = scratch
        .as_ref()
        .filter(|_| cluster.is_some())
        .map(|s| (s.store.clone(), s.prefix.clone()));
    let config = marts::MartConfig {
        run_id: run_id.to_string(),
        run_year: as_of.year(),
        components,
        grading: checked.grading.clone(),
        cluster: checked.cluster.clone(),
        targets,
        scratch,
    };
    let marts = marts::build(&ctx, &config).await;
    for (name, _, _) in marts::STEPS {
        let _ = ctx.deregister_table(*name);
    }
    // A cluster's scratch results are not part of any table, and its marts came back
    // in memory: they are deleted now. A failed delete is logged, not fatal.
    if let Some((store, prefix)) = scratch_prefix
        && let Err(e) = crate::export::delete_prefix(store.as_ref(), &prefix).await
    {
        tracing::warn!(prefix = %prefix, error = %e, "could not delete the scratch results");
    }
    Ok((marts?, guard))
}

/// The folder a run stages its valid rows in until they are committed: under the
/// warehouse root (`_staging/<run id>`) for a local warehouse, else in the system's
/// temporary folder. Removed when the run is done with it, failed or not; a killed
/// run's folder (and its marts' `_scratch`) is removed by the next run, which holds
/// the lock.
struct Staging {
    path: std::path::PathBuf,
}

impl Staging {
    fn create(root: Option<&std::path::Path>, run_id: &str) -> Result<Staging> {
        let path = match root {
            Some(root) => {
                // Only the run holding the lock stages rows and builds marts: what is
                // there is a killed run's.
                for left in ["_staging", "_scratch"].map(|f| root.join(f)) {
                    if left.exists() {
                        std::fs::remove_dir_all(&left).map_err(|e| {
                            Error::Internal(format!("removing {}: {e}", left.display()))
                        })?;
                    }
                }
                root.join("_staging").join(run_id)
            }
            None => std::env::temp_dir().join(format!("townstat-staging-{run_id}")),
        };
        // Owner-only and never one that exists: the rows staged here are what the
        // run commits.
        create_private_dir(&path)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", path.display())))?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(folder = %self.path.display(), error = %e, "could not remove the staged rows");
        }
        if let Some(parent) = self.path.parent().filter(|p| p.ends_with("_staging")) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// The staged rows of a table as the warehouse's row stream.
fn stream_of(staged: &townstat_ingest::stage::StagedRows) -> townstat_warehouse::RowStream {
    let rows = staged.clone();
    townstat_warehouse::RowStream {
        schema: staged.schema(),
        rows: staged.num_rows(),
        open: std::sync::Arc::new(move || {
            Box::new(rows.batches().map(|b| b.map_err(|e| e.to_string())))
        }),
    }
}

/// How much of a mart step's result a local build holds in memory before the rest
/// goes to its scratch file: `TOWNSTAT_SCRATCH_MIN` (e.g. `128MiB`; `0` sends every
/// result to disk) or 64 MiB. At scale 100 that moves seven steps to disk, the marts
/// `town_member_year`, `town_membership` and `enterprise_size_year` among them, and
/// took the run's peak from 1,478–1,609 MiB (with 128 MiB) to 1,378–1,464 MiB, no
/// slower; at scale 10 it moves two and costs the marts 0.3 s (bench/RESULTS.md).
pub fn scratch_min_bytes() -> usize {
    std::env::var("TOWNSTAT_SCRATCH_MIN")
        .ok()
        .and_then(|v| townstat_query::session::parse_size(&v))
        .map(|n| n.max(1))
        .unwrap_or(64 << 20)
}

/// The folder of a local build's scratch results: `<root>/_scratch/<run id>` for a
/// local warehouse, else in the system's temporary folder.
fn local_scratch_dir(warehouse: &Warehouse, run_id: &str) -> std::path::PathBuf {
    match warehouse.local_root() {
        Some(root) => root.join("_scratch").join(run_id),
        None => std::env::temp_dir().join(format!("townstat-scratch-{run_id}")),
    }
}

/// Creates a run's staging or scratch folder readable by its owner alone (mode 0700
/// on Unix), and fails when the folder is already there. The run commits the rows it
/// staged and reads its scratch files back without validating them (`scratch_ipc` in
/// townstat-query), so nobody else may have made the folder or put a file in it: in
/// the shared temporary folder another local user could otherwise create
/// `townstat-staging-<run id>` or `townstat-scratch-<run id>` first and keep it
/// writable. The parent (`<root>/_staging`, `<root>/_scratch` or the temporary
/// folder) may already exist.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A local build's scratch: large step results as Arrow IPC files on local disk, and
/// the guard that removes the folder.
fn local_scratch(
    warehouse: &Warehouse,
    run_id: &str,
    min_bytes: Option<usize>,
) -> Result<(townstat_query::marts::Scratch, LocalScratch)> {
    let dir = local_scratch_dir(warehouse, run_id);
    let fail = |e: &dyn std::fmt::Display| {
        Error::Internal(format!("scratch folder {}: {e}", dir.display()))
    };
    create_private_dir(&dir).map_err(|e| fail(&e))?;
    let guard = LocalScratch { dir: dir.clone() };
    let url = url::Url::from_directory_path(&dir).map_err(|()| fail(&"not an absolute path"))?;
    let prefix = object_store::path::Path::from_filesystem_path(&dir).map_err(|e| fail(&e))?;
    let scratch = townstat_query::marts::Scratch {
        store: Arc::new(object_store::local::LocalFileSystem::new()),
        prefix,
        url,
        min_bytes: min_bytes.unwrap_or_else(scratch_min_bytes).max(1),
    };
    Ok((scratch, guard))
}

/// A local build's scratch folder, removed (and `_scratch` when it is left empty)
/// when the run drops it: after the export on success, at the failure otherwise. A
/// killed run's folder is removed by the next run ([`Staging::create`]).
struct LocalScratch {
    dir: std::path::PathBuf,
}

impl Drop for LocalScratch {
    fn drop(&mut self) {
        if self.dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            tracing::warn!(folder = %self.dir.display(), error = %e, "could not remove the scratch folder");
        }
        if let Some(parent) = self.dir.parent().filter(|p| p.ends_with("_scratch")) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run id nobody else uses: the test's name, the process and the time.
    fn unique_run_id(name: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("test-{name}-{}-{nanos}", std::process::id())
    }

    /// The folder is readable, writable and listable by its owner alone.
    fn assert_owner_only(dir: &std::path::Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
        }
        assert!(dir.is_dir());
    }

    /// A folder `townstat-<kind>-<run id>` that someone else made in the temporary
    /// folder before the run, with a file in it: the run id and the folder.
    fn planted(kind: &str) -> (String, std::path::PathBuf) {
        let run_id = unique_run_id(&format!("{kind}-planted"));
        let dir = std::env::temp_dir().join(format!("townstat-{kind}-{run_id}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("planted.arrow"), b"not ours").unwrap();
        (run_id, dir)
    }

    /// The run refused a [`planted`] folder with an error that names it, and did not
    /// take it over, so it did not remove it either; the test removes it.
    fn assert_refused_and_left_alone<T>(made: Result<T>, dir: &std::path::Path) {
        let err = match made {
            Ok(_) => panic!("{} was made before the run and used", dir.display()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.to_lowercase().contains("exists"), "{err}");
        assert_eq!(
            std::fs::read(dir.join("planted.arrow")).unwrap(),
            b"not ours"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_object_store_run_makes_its_own_private_scratch_folder_and_removes_it() {
        let warehouse = Warehouse::open("s3://bucket/warehouse").unwrap();
        let run_id = unique_run_id("private");
        let (_scratch, guard) = local_scratch(&warehouse, &run_id, None).unwrap();
        let dir = guard.dir.clone();
        assert_eq!(
            dir,
            std::env::temp_dir().join(format!("townstat-scratch-{run_id}"))
        );
        assert_owner_only(&dir);
        drop(guard);
        assert!(!dir.exists());
    }

    #[test]
    fn a_scratch_folder_someone_made_first_fails_the_run_and_is_left_alone() {
        let warehouse = Warehouse::open("s3://bucket/warehouse").unwrap();
        let (run_id, dir) = planted("scratch");
        assert_refused_and_left_alone(local_scratch(&warehouse, &run_id, None), &dir);
    }

    #[test]
    fn staging_in_the_temporary_folder_is_private_and_never_one_made_first() {
        let run_id = unique_run_id("staging");
        let stage = Staging::create(None, &run_id).unwrap();
        let dir = stage.path.clone();
        assert_eq!(
            dir,
            std::env::temp_dir().join(format!("townstat-staging-{run_id}"))
        );
        assert_owner_only(&dir);
        drop(stage);
        assert!(!dir.exists());

        let (run_id, dir) = planted("staging");
        assert_refused_and_left_alone(Staging::create(None, &run_id), &dir);
    }

    #[test]
    fn a_local_warehouse_stages_under_its_root_after_removing_a_killed_runs_folders() {
        let root = std::env::temp_dir().join(unique_run_id("staging-root"));
        for left in ["_staging/old-run", "_scratch/old-run"] {
            std::fs::create_dir_all(root.join(left)).unwrap();
            std::fs::write(root.join(left).join("part.arrow"), b"killed").unwrap();
        }
        let stage = Staging::create(Some(&root), "run-2").unwrap();
        assert_eq!(stage.path, root.join("_staging").join("run-2"));
        assert!(!root.join("_staging/old-run").exists());
        assert!(!root.join("_scratch").exists());
        drop(stage);
        assert!(!root.join("_staging").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_local_warehouse_keeps_its_scratch_under_its_root() {
        let root = std::env::temp_dir().join(unique_run_id("root"));
        let warehouse = Warehouse::open(root.to_str().unwrap()).unwrap();
        let (_scratch, guard) = local_scratch(&warehouse, "run-1", None).unwrap();
        let root = warehouse.local_root().unwrap();
        assert_eq!(guard.dir, root.join("_scratch").join("run-1"));
        assert!(guard.dir.is_dir());
        drop(guard);
        // The emptied `_scratch` goes with the run's folder.
        assert!(!root.join("_scratch").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
