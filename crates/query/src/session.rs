//! Sessions over pinned warehouse versions, and read-only execution.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use townstat_warehouse::{CommittedRun, RunSelector, Warehouse};

use crate::error::{Error, Result};

/// A query session and the run whose tables it reads.
pub struct Session {
    /// The DataFusion context with every table registered.
    pub ctx: SessionContext,
    /// The run the tables come from.
    pub run: CommittedRun,
}

/// Opens a session on the last committed run, or on `run_id`.
pub async fn open_session(warehouse: &Warehouse, run_id: Option<&str>) -> Result<Session> {
    let selector = match run_id {
        Some(id) => RunSelector::Id(id.to_string()),
        None => RunSelector::Latest,
    };
    open_session_at(warehouse, &selector).await
}

/// Opens a session on the run a selector chooses.
pub async fn open_session_at(warehouse: &Warehouse, selector: &RunSelector) -> Result<Session> {
    open_session_in(context(), warehouse, selector).await
}

/// Opens a session on the run a selector chooses, registering the tables in a given
/// context (a cluster's, say; see `townstat_cluster::remote_context`).
pub async fn open_session_in(
    ctx: SessionContext,
    warehouse: &Warehouse,
    selector: &RunSelector,
) -> Result<Session> {
    let run = warehouse
        .pinned_versions(selector)
        .await?
        .ok_or_else(|| match selector {
            RunSelector::Id(id) => Error::NoRun(format!("no committed run {id} in {}", warehouse.location())),
            RunSelector::Sequence(n) => Error::NoRun(format!("no committed run number {n} in {}", warehouse.location())),
            RunSelector::AsOf(_) => Error::NoRun(format!("no run was committed by that time in {}", warehouse.location())),
            RunSelector::Latest => Error::NoRun(format!(
                "the warehouse {} has no committed run yet; run `townstat run` or `townstat demo` first",
                warehouse.location()
            )),
        })?;
    warehouse.register(&ctx, &run.versions).await?;
    warehouse.register_run_record(&ctx, &run).await?;
    declare_stored_kinds(&ctx, &run.versions).await;
    Ok(Session { ctx, run })
}

/// Declares the kinds the run's pipeline declared (its `declared_kind` table), so
/// that their tables and columns carry their labels here too (`\d`, the server's
/// catalog) though this process read no pipeline. Not in a process that loaded a
/// pipeline (its kinds are the pipeline's). A declaration that clashes with one this
/// process already holds keeps the one held (a warning): only labels are at stake.
async fn declare_stored_kinds(
    ctx: &SessionContext,
    versions: &std::collections::BTreeMap<String, i64>,
) {
    if !versions.contains_key("declared_kind")
        || townstat_domain::schema::kinds_come_from_pipeline()
    {
        return;
    }
    let batches = match ctx.sql("SELECT name, declaration FROM declared_kind").await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    let batches = match batches {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "the run's declared kinds could not be read");
            return;
        }
    };
    for b in &batches {
        let text = |c: usize| -> Vec<Option<String>> {
            use arrow::array::{Array, AsArray};
            let Ok(a) = arrow::compute::cast(b.column(c), &arrow::datatypes::DataType::Utf8) else {
                return vec![];
            };
            let a = a.as_string::<i32>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect()
        };
        for (name, declaration) in text(0).into_iter().zip(text(1)) {
            let (Some(name), Some(declaration)) = (name, declaration) else {
                continue;
            };
            let origin = std::path::PathBuf::from(format!("declared_kind {name}"));
            if let Err(e) = townstat_domain::schema::declare_kind_text(&declaration, &origin) {
                tracing::warn!(kind = %name, error = %e, "a declared kind of the run is not known here");
            }
        }
    }
}

/// Default memory for query execution: beyond it, sorts, aggregations and joins that
/// can spill write to temporary files instead of growing (product.md "Bounded").
pub const DEFAULT_MEMORY_LIMIT: usize = 4 << 30;

/// Parses a size like `4GiB`, `512MiB`, `64KiB` or a plain number of bytes.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let (num, mult) = [
        ("GiB", 1usize << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ]
    .iter()
    .find_map(|(suffix, m)| t.strip_suffix(suffix).map(|n| (n.trim(), *m)))
    .unwrap_or((t, 1));
    num.parse::<usize>().ok().and_then(|n| n.checked_mul(mult))
}

/// The query memory limit: `TOWNSTAT_MEMORY_LIMIT` (e.g. `2GiB`) or the default.
pub fn memory_limit() -> usize {
    std::env::var("TOWNSTAT_MEMORY_LIMIT")
        .ok()
        .and_then(|v| parse_size(&v))
        .unwrap_or(DEFAULT_MEMORY_LIMIT)
}

/// The warm tables' budget of an interactive shell (crate::warm):
/// `TOWNSTAT_WARM_TABLES` (e.g. `2GiB`, 0 for none) or [`DEFAULT_WARM_TABLES`].
pub fn warm_tables_limit() -> usize {
    match std::env::var("TOWNSTAT_WARM_TABLES") {
        Ok(v) if v.trim() == "0" => 0,
        Ok(v) => parse_size(&v).unwrap_or(DEFAULT_WARM_TABLES),
        Err(_) => DEFAULT_WARM_TABLES,
    }
}

/// The default budget of warm tables: the columns statements read, kept decoded.
pub const DEFAULT_WARM_TABLES: usize = 1 << 30;

/// The statement timeout from `TOWNSTAT_STATEMENT_TIMEOUT` (seconds), if set.
pub fn statement_timeout() -> Option<std::time::Duration> {
    std::env::var("TOWNSTAT_STATEMENT_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().trim_end_matches('s').parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(std::time::Duration::from_secs_f64)
}

/// The memory pool of a run's mart build and of its marts' tests:
/// `TOWNSTAT_MEMORY_LIMIT` when set, else [`RUN_MEMORY_LIMIT`].
pub fn run_memory_limit() -> usize {
    std::env::var("TOWNSTAT_MEMORY_LIMIT")
        .ok()
        .and_then(|v| parse_size(&v))
        .unwrap_or(RUN_MEMORY_LIMIT)
}

/// The default pool of a run's mart build: smaller than a query's
/// ([`DEFAULT_MEMORY_LIMIT`]) because a nightly run shares its machine and builds one
/// step at a time. With 4 GiB the scale-100 sort of `town_member_year` held 1.2 GiB
/// before it spilled; with 1 GiB the step took no longer (bench/RESULTS.md). A hash
/// join's table cannot spill: a run whose largest joins outgrow the pool fails with
/// "Resources exhausted" and needs a larger `TOWNSTAT_MEMORY_LIMIT` (at scale 100 the
/// tables of one step's joins took at most 520 MB together).
pub const RUN_MEMORY_LIMIT: usize = 1 << 30;

/// A session context with townstat's settings: information_schema, the UDFs, and a
/// memory pool shared fairly among spilling operators, with spill files in the OS
/// temporary folder.
pub fn context() -> SessionContext {
    build_context(memory_limit(), true)
}

/// [`context`] with a memory pool of `limit` bytes, and DataFusion's own choice of
/// hash join mode with a build-side threshold in proportion to the pool
/// ([`collect_threshold`]): a run's marts use it (see [`crate::join_mode`] for why
/// not townstat's rule).
pub fn context_with_limit(limit: usize) -> SessionContext {
    build_context(limit, false)
}

/// The estimated bytes under which a hash join of a session with a `limit`-byte pool
/// builds one table that every partition probes, instead of splitting both sides by
/// key: a sixteenth of the pool (64 MiB of a run's 1 GiB). DataFusion's own threshold,
/// 1 MB, split nearly every join of the marts, and a split repartitions both sides:
/// in `town_member_year` the 1.4 M joined rows of 40 columns, twice, to add a size
/// class (45 MB) and a name (24 MB). One table costs a build on one thread while the
/// other partitions wait. At scale 100 nineteen joins of the marts now build one table
/// (the largest of 1.4 M rows); five stay split. Measured at scale 100, three rounds
/// alternating with the build before (bench/RESULTS.md, "Small build sides built once
/// in the marts"): the steps' wall time 12.98, 11.87, 11.02 s against 13.64, 12.37,
/// 12.34, their CPU time 22.1, 20.1, 19.0 s against 24.4, 22.3, 22.4. A join holds the
/// same rows either way, in one table or in one per partition; a table is gathered into
/// one batch before it is hashed, so one table of twice the rows raised the marts'
/// peak memory (1,319 and 1,441 MiB against 1,116–1,263; 32 MiB was no lower).
/// `DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD` still sets it.
pub fn collect_threshold(limit: usize) -> usize {
    limit / 16
}

/// The rows under which a build side whose size in bytes is not estimated (an
/// aggregate's output, a join's) is built once, in a run's sessions, with
/// [`collect_threshold`]. With DataFusion's own 128 K rows and the bytes threshold
/// alone, `int_group_year` took 2.5–3.2 s of CPU at scale 100 (five runs); with a
/// million rows, 2.2–2.3 (three): its joins to the patents' applicants (343 K rows,
/// a join's output) build one table. A million rows of the marts' intermediate
/// results are tens of MB.
/// `DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD_ROWS` still sets it.
pub const COLLECT_THRESHOLD_ROWS: usize = 1 << 20;

fn build_context(limit: usize, collect_small_builds: bool) -> SessionContext {
    // DataFusion's own settings can be tuned from the environment
    // (`DATAFUSION_EXECUTION_BATCH_SIZE=…`, `DATAFUSION_EXECUTION_TARGET_PARTITIONS=…`);
    // a value it cannot parse is reported and the defaults are kept.
    let base = SessionConfig::from_env().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring DATAFUSION_* settings");
        SessionConfig::new()
    });
    let mut config = base
        .with_information_schema(true)
        .with_default_catalog_and_schema("townstat", "public");
    // A sort reserves this much for merging its spill files; keep it a fraction of
    // the pool so that small limits spill instead of failing.
    config.options_mut().execution.sort_spill_reservation_bytes = (limit / 8).min(10 << 20);
    // A partial aggregation that barely groups (as many groups as rows, the first
    // phase of a count(DISTINCT) or a mart's group by enterprise) passes its rows on
    // to the final one. DataFusion decides after 100,000 rows per partition, which at
    // these sizes is most of them; townstat decides after one batch. Measured at
    // scale 100 (bench/RESULTS.md): the patents query's first partial aggregation
    // 21 → 1.4 ms of CPU, the query 0.94–0.99× DuckDB against 1.16–1.18×; the marts
    // level (19 steps 10.54 and 10.85 s against 10.47 and 10.82, alternating).
    // DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_ROWS_THRESHOLD still sets it.
    if std::env::var_os("DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_ROWS_THRESHOLD")
        .is_none()
    {
        config
            .options_mut()
            .execution
            .skip_partial_aggregation_probe_rows_threshold = 8192;
    }
    // A query session keeps the columns its statements read (crate::warm), joining
    // columns read by different scans row for row, so each partition of a scan must
    // read its own files and file ranges, in order. DataFusion lets a partition that
    // is done take files from the others instead (work stealing, on by default); then
    // two reads of a table came back in different orders, the columns were refused
    // ("would not line up") and every later statement on that table read it from
    // disk: in 5 of 11 runs of bench/adhoc.py at scale 100, none of 12 without
    // stealing (bench/RESULTS.md). A run's marts keep it.
    // DATAFUSION_EXECUTION_ENABLE_FILE_STREAM_WORK_STEALING still sets it.
    if collect_small_builds
        && std::env::var_os("DATAFUSION_EXECUTION_ENABLE_FILE_STREAM_WORK_STEALING").is_none()
    {
        config
            .options_mut()
            .execution
            .enable_file_stream_work_stealing = false;
    }
    if !collect_small_builds {
        let optimizer = &mut config.options_mut().optimizer;
        if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD").is_none() {
            optimizer.hash_join_single_partition_threshold = collect_threshold(limit);
        }
        if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD_ROWS")
            .is_none()
        {
            optimizer.hash_join_single_partition_threshold_rows = COLLECT_THRESHOLD_ROWS;
        }
    }
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(std::sync::Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(limit),
        ))
        .build_arc();
    // DataFusion's optimizer rules, and before its filter push-down one that carries
    // filters across join keys that cast a source table's INT year to a mart's BIGINT
    // one (crate::infer).
    // First of all, a derived table read twice with an identical plan is computed
    // once (crate::shared), planned by townstat's query planner.
    let mut rules: Vec<std::sync::Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> =
        vec![std::sync::Arc::new(crate::shared::ShareRepeatedSubplans)];
    rules.extend(crate::infer::with_rule(
        &datafusion::optimizer::Optimizer::new().rules,
    ));
    let mut state = datafusion::execution::session_state::SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_optimizer_rules(rules)
        .with_query_planner(std::sync::Arc::new(crate::shared::TownstatQueryPlanner));
    let mut physical = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    if collect_small_builds {
        // After DataFusion's join selection, a small build side beside a large probe
        // side is built once for every partition (crate::join_mode).
        physical = crate::join_mode::with_rule(physical);
    }
    // Last, `COALESCE(column, literal)` in projections computed in one pass
    // (crate::fill_null).
    physical.push(std::sync::Arc::new(crate::fill_null::FillNulls));
    state = state.with_physical_optimizer_rules(physical);
    if let Ok(rt) = runtime {
        state = state.with_runtime_env(rt);
    }
    let ctx = SessionContext::new_with_state(state.build());
    crate::udf::register(&ctx);
    ctx
}

/// Options that let only queries through: no DDL, no DML, no `SET`.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

impl Session {
    /// Runs one read-only statement and collects its result, within the statement
    /// timeout (`TOWNSTAT_STATEMENT_TIMEOUT`, seconds) when one is set. On timeout the
    /// execution is dropped, which cancels every task it spawned: the timeout stops
    /// the work, not only the wait.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let run = async {
            let df = self.ctx.sql_with_options(sql, read_only()).await?;
            Ok::<_, Error>(df.collect().await?)
        };
        match statement_timeout() {
            Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
                Error::Timeout(format!(
                    "statement cancelled after {} s (TOWNSTAT_STATEMENT_TIMEOUT)",
                    limit.as_secs_f64()
                ))
            })?,
            None => run.await,
        }
    }

    /// The one table a statement reads, when it reads exactly one (what its columns'
    /// Chinese labels are looked up in: `amount` of `subsidy` is not `financing`'s).
    pub async fn single_table(&self, sql: &str) -> Option<String> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::logical_expr::LogicalPlan;
        let plan = self.ctx.state().create_logical_plan(sql).await.ok()?;
        let mut names = std::collections::BTreeSet::new();
        plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                names.insert(scan.table_name.table().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .ok()?;
        let mut names = names.into_iter();
        match (names.next(), names.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// Keeps the columns this session's statements read decoded in memory, within
    /// `budget` (crate::warm): every warehouse table is wrapped in a
    /// [`crate::warm::WarmTable`]. For sessions that answer many statements (the
    /// server, the interactive shell); a one-statement session gains nothing.
    pub fn warm(&self, budget: &std::sync::Arc<crate::warm::Budget>) -> Result<()> {
        for name in self.run.versions.keys() {
            if let Some(provider) = self.ctx.deregister_table(name.as_str())? {
                let warm = crate::warm::WarmTable::new(name, provider, budget.clone());
                self.ctx
                    .register_table(name.as_str(), std::sync::Arc::new(warm))?;
            }
        }
        Ok(())
    }

    /// The table versions this session reads.
    pub fn versions(&self) -> &BTreeMap<String, i64> {
        &self.run.versions
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn query_sessions_read_each_partitions_own_files_and_runs_keep_work_stealing() {
        let stealing = |ctx: datafusion::prelude::SessionContext| {
            ctx.state()
                .config()
                .options()
                .execution
                .enable_file_stream_work_stealing
        };
        assert!(!stealing(super::context()));
        assert!(stealing(super::context_with_limit(1 << 30)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
    }
}
