//! Shared subplans: a derived table that a statement reads twice is computed once.
//!
//! DataFusion plans a common table expression at each place it is referenced, so
//! `WITH t AS (… GROUP BY …) SELECT … FROM t c LEFT JOIN t p ON …` (a year next to
//! the year before) joined and aggregated the same rows twice. PostgreSQL 12+ and
//! DuckDB 1.4+ compute a CTE referenced more than once once. townstat does the same
//! for any derived table (a CTE, a view, a subquery in FROM) that appears twice or
//! more with an identical plan:
//!
//! 1. [`ShareRepeatedSubplans`], the first logical optimizer rule, finds the inputs of
//!    `SubqueryAlias` nodes that occur more than once in a statement's plan, and wraps
//!    each occurrence in a [`SharedSubplan`] node with one id. Only plans that cost
//!    something to compute (a join, an aggregate, a window, a DISTINCT) are shared;
//!    never plans with volatile functions (`random()`) or references to an outer query.
//!    The node stops filters and limits above it from being pushed into the shared
//!    plan, as PostgreSQL's materialized CTE does, so that every reference reads the
//!    same rows; the plan under it is optimized as usual.
//! 2. The physical planner ([`TownstatQueryPlanner`]) plans each occurrence as a
//!    [`SharedSubplanExec`] over its own input, then links the occurrences whose
//!    optimized logical plans are still identical to one shared result.
//! 3. The first linked occurrence that runs executes its input, every partition on
//!    its own task, and keeps the batches; the others read them. The batches are
//!    counted in the statement's memory pool. If they would take more than a quarter
//!    of the pool, nothing is kept and every occurrence executes its own input, as
//!    without sharing (the answer is the same; only the work is done twice).
//!
//! Identical plans over the same table versions give the same rows, so sharing never
//! changes an answer; the `.slt` files check the queries that use it
//! (`tests/slt/shared_subplans.slt`).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, Result, Statistics};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;

/// The rule's name, as `EXPLAIN VERBOSE` shows it.
pub const NAME: &str = "townstat_share_repeated_subplans";

/// Ids of shared subplans: unique in the process, so the occurrences of one
/// statement are never linked with another's.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A derived table's plan, read at more than one place of a statement (see the
/// module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedSubplan {
    id: u64,
    input: Arc<LogicalPlan>,
}

impl PartialOrd for SharedSubplan {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        if self == other {
            Some(std::cmp::Ordering::Equal)
        } else {
            // Ordered by id; two different plans under one id are not ordered.
            match self.id.cmp(&other.id) {
                std::cmp::Ordering::Equal => None,
                order => Some(order),
            }
        }
    }
}

impl UserDefinedLogicalNodeCore for SharedSubplan {
    fn name(&self) -> &str {
        "SharedSubplan"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![self.input.as_ref()]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedSubplan: id={}", self.id)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.into_iter().next().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("a shared subplan has one input".into())
        })?;
        Ok(SharedSubplan {
            id: self.id,
            input: Arc::new(input),
        })
    }
}

/// The logical rule (see the module documentation).
#[derive(Debug, Default)]
pub struct ShareRepeatedSubplans;

impl OptimizerRule for ShareRepeatedSubplans {
    fn name(&self) -> &str {
        NAME
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let mut seen: HashMap<Arc<LogicalPlan>, usize> = HashMap::new();
        // Plans already shared (by an earlier pass) are left as they are, and so is
        // what is inside them.
        plan.apply(|node| {
            if is_shared(node) {
                return Ok(TreeNodeRecursion::Jump);
            }
            if let LogicalPlan::SubqueryAlias(alias) = node
                && !is_shared(&alias.input)
            {
                *seen.entry(alias.input.clone()).or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let mut ids: HashMap<Arc<LogicalPlan>, u64> = HashMap::new();
        for (input, count) in seen {
            if count >= 2 && worth_sharing(&input)? {
                ids.insert(input, NEXT_ID.fetch_add(1, Ordering::Relaxed));
            }
        }
        if ids.is_empty() {
            return Ok(Transformed::no(plan));
        }
        plan.transform_down(|node| {
            if is_shared(&node) {
                return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
            }
            let LogicalPlan::SubqueryAlias(mut alias) = node else {
                return Ok(Transformed::no(node));
            };
            let Some(id) = ids.get(&alias.input) else {
                return Ok(Transformed::no(LogicalPlan::SubqueryAlias(alias)));
            };
            let shared = SharedSubplan {
                id: *id,
                input: alias.input.clone(),
            };
            alias.input = Arc::new(LogicalPlan::Extension(Extension {
                node: Arc::new(shared),
            }));
            // A repeated plan nested in this one is computed with it, not shared
            // on its own.
            Ok(Transformed::new(
                LogicalPlan::SubqueryAlias(alias),
                true,
                TreeNodeRecursion::Jump,
            ))
        })
    }
}

fn is_shared(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Extension(e) if e.node.as_any().is::<SharedSubplan>())
}

/// Whether computing `plan` once is worth keeping its rows: it joins, aggregates,
/// windows or de-duplicates; and safe: the same at every reference (no volatile
/// function, no reference to an outer query, no recursion, no node of unknown kind).
fn worth_sharing(plan: &LogicalPlan) -> Result<bool> {
    let mut costly = false;
    let mut safe = true;
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Join(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Distinct(_) => costly = true,
            LogicalPlan::RecursiveQuery(_)
            | LogicalPlan::Extension(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_) => safe = false,
            _ => {}
        }
        for expr in node.expressions() {
            if expr.is_volatile() || expr.contains_outer() {
                safe = false;
            }
        }
        Ok(if safe {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })?;
    Ok(costly && safe)
}

/// The rows of a shared subplan, kept by the occurrence that ran first.
#[derive(Debug, Default)]
struct SharedResult {
    cell: tokio::sync::OnceCell<Kept>,
}

#[derive(Debug)]
enum Kept {
    /// Every partition's batches of the input that ran, and their memory.
    Rows {
        partitions: Vec<Vec<RecordBatch>>,
        _reservation: MemoryReservation,
    },
    /// Too large to keep: every occurrence executes its own input.
    TooLarge,
}

/// An occurrence of a shared subplan (see the module documentation).
#[derive(Debug)]
pub struct SharedSubplanExec {
    id: u64,
    /// The optimized logical plan of the input: occurrences are linked only when
    /// theirs are identical.
    logical: Arc<LogicalPlan>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// Set once the statement's physical plan is complete, when another occurrence
    /// with an identical plan was found.
    link: Mutex<Option<Arc<SharedResult>>>,
}

impl SharedSubplanExec {
    fn new(id: u64, logical: Arc<LogicalPlan>, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        SharedSubplanExec {
            id,
            logical,
            input,
            properties,
            link: Mutex::new(None),
        }
    }

    fn linked(&self) -> Option<Arc<SharedResult>> {
        self.link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl DisplayAs for SharedSubplanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // EXPLAIN prints the plan before the occurrences are linked: the id says
        // which are candidates.
        write!(f, "SharedSubplanExec: id={}", self.id)
    }
}

impl ExecutionPlan for SharedSubplanExec {
    fn name(&self) -> &str {
        "SharedSubplanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    /// The whole output's statistics are the input's (the same rows, however kept):
    /// joins choose their build side by them. A partition's are unknown.
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        match partition {
            None => vec![ChildStats::At(None)],
            Some(_) => vec![ChildStats::Skip],
        }
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        match (args.partition(), input_stats.first()) {
            (None, Some(stats)) => Ok(stats.clone()),
            _ => Ok(Arc::new(Statistics::new_unknown(&self.schema()))),
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("a shared subplan has one input".into())
        })?;
        // A copy is not linked: copies are made while the plan is optimized, before
        // the occurrences are linked, or to execute a plan again with fresh state (a
        // recursive query's next round), where rows kept from the last round would
        // be wrong.
        Ok(Arc::new(SharedSubplanExec::new(
            self.id,
            self.logical.clone(),
            input,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(shared) = self.linked() else {
            return self.input.execute(partition, ctx);
        };
        let input = self.input.clone();
        let schema = self.schema();
        let parts = self.properties.partitioning.partition_count().max(1);
        let stream = futures::stream::once(async move {
            let kept = shared
                .cell
                .get_or_try_init(|| keep(input.clone(), ctx.clone()))
                .await?;
            let stream: SendableRecordBatchStream = match kept {
                Kept::Rows { partitions, .. } => {
                    // The batches of the input's partitions p with p ≡ partition
                    // (mod this node's partition count): each batch exactly once.
                    let batches: Vec<Result<RecordBatch>> = partitions
                        .iter()
                        .enumerate()
                        .filter(|(p, _)| p % parts == partition)
                        .flat_map(|(_, b)| b.iter().cloned().map(Ok))
                        .collect();
                    Box::pin(RecordBatchStreamAdapter::new(
                        input.schema(),
                        futures::stream::iter(batches),
                    ))
                }
                Kept::TooLarge => input.execute(partition, ctx)?,
            };
            Ok::<_, datafusion::error::DataFusionError>(stream)
        })
        .flat_map(|stream| match stream {
            Ok(stream) => stream.boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Executes a copy of `input`, every partition on its own task, and keeps its
/// batches, unless they would take more than a quarter of the statement's memory
/// pool. A copy with fresh state (DataFusion's `reset_plan_states`, as for a
/// recursive query's rounds): some operators can execute each partition only once
/// (a RepartitionExec), and when the rows are not kept, or this statement's reading
/// is dropped half-way and another reference starts again, the original input must
/// still be whole.
async fn keep(input: Arc<dyn ExecutionPlan>, ctx: Arc<TaskContext>) -> Result<Kept> {
    let input = datafusion::physical_plan::execution_plan::reset_plan_states(input)?;
    let pool = ctx.memory_pool();
    let cap = match pool.memory_limit() {
        MemoryLimit::Finite(limit) => limit / 4,
        _ => 256 << 20,
    };
    let reservation = Arc::new(Mutex::new(
        MemoryConsumer::new("SharedSubplan").register(pool),
    ));
    // A JoinSet: if this statement is dropped, the tasks are aborted with it.
    let mut tasks = tokio::task::JoinSet::new();
    let count = input.output_partitioning().partition_count();
    for p in 0..count {
        let (input, ctx, reservation) = (input.clone(), ctx.clone(), reservation.clone());
        tasks.spawn(async move {
            let mut stream = input.execute(p, ctx)?;
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let size = batch.get_array_memory_size();
                let r = reservation
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if r.size() + size > cap || r.try_grow(size).is_err() {
                    return Ok((p, None));
                }
                drop(r);
                batches.push(batch);
            }
            Ok::<_, datafusion::error::DataFusionError>((p, Some(batches)))
        });
    }
    let mut partitions = vec![Vec::new(); count];
    while let Some(done) = tasks.join_next().await {
        let (p, part) =
            done.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))??;
        match part {
            Some(batches) => partitions[p] = batches,
            None => {
                tracing::debug!(
                    "a shared subplan's rows do not fit a quarter of the pool; executed at each reference"
                );
                return Ok(Kept::TooLarge);
            }
        }
    }
    let reservation = Arc::try_unwrap(reservation)
        .map_err(|_| {
            datafusion::error::DataFusionError::Internal("reservation still shared".into())
        })?
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(Kept::Rows {
        partitions,
        _reservation: reservation,
    })
}

/// Plans [`SharedSubplan`] nodes.
#[derive(Debug)]
struct SharedSubplanPlanner;

#[async_trait]
impl ExtensionPlanner for SharedSubplanPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(shared) = node.as_any().downcast_ref::<SharedSubplan>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return Err(datafusion::error::DataFusionError::Internal(
                "a shared subplan has one input".into(),
            ));
        };
        Ok(Some(Arc::new(SharedSubplanExec::new(
            shared.id,
            shared.input.clone(),
            input.clone(),
        ))))
    }
}

/// DataFusion's physical planner, with [`SharedSubplan`] nodes planned and their
/// occurrences linked once the plan is complete (after the physical optimizer).
#[derive(Debug)]
pub struct TownstatQueryPlanner;

#[async_trait]
impl QueryPlanner for TownstatQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planner =
            DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(SharedSubplanPlanner)]);
        let plan = planner
            .create_physical_plan(logical_plan, session_state)
            .await?;
        link(&plan)?;
        Ok(plan)
    }
}

/// Links the occurrences of each shared subplan whose optimized logical plans are
/// identical; an occurrence left alone executes its input as usual.
fn link(plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
    let mut groups: Vec<Vec<&SharedSubplanExec>> = Vec::new();
    let mut found: Vec<&SharedSubplanExec> = Vec::new();
    plan.apply(|node| {
        if let Some(shared) = node.downcast_ref::<SharedSubplanExec>() {
            found.push(shared);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for shared in found {
        match groups
            .iter_mut()
            .find(|g| g[0].id == shared.id && g[0].logical == shared.logical)
        {
            Some(group) => group.push(shared),
            None => groups.push(vec![shared]),
        }
    }
    for group in groups.into_iter().filter(|g| g.len() > 1) {
        let result = Arc::new(SharedResult::default());
        for shared in group {
            *shared
                .link
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::prelude::SessionContext;

    use super::*;

    /// `sales(town, year, amount)`: towns 0..50, years 2023 and 2024, 2,000 rows,
    /// amount = row number; and `counted(x)`, which returns x and counts the rows it
    /// was called on (Immutable, so sharing is allowed, and the count shows how many
    /// times the shared plan ran).
    fn context(limit: usize) -> (SessionContext, Arc<AtomicUsize>) {
        let ctx = crate::session::context_with_limit(limit);
        let schema = Arc::new(Schema::new(vec![
            Field::new("town", DataType::Int64, false),
            Field::new("year", DataType::Int64, false),
            Field::new("amount", DataType::Int64, false),
        ]));
        let n = 2000i64;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 50))),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| 2023 + (i / 50) % 2),
                )),
                Arc::new(Int64Array::from_iter_values(0..n)),
            ],
        )
        .expect("batch");
        let parts = vec![vec![batch.slice(0, 700)], vec![batch.slice(700, 1300)]];
        ctx.register_table(
            "sales",
            Arc::new(MemTable::try_new(schema, parts).expect("t")),
        )
        .expect("register");
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        ctx.register_udf(create_udf(
            "counted",
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(move |args: &[ColumnarValue]| {
                let arrays = ColumnarValue::values_to_arrays(args)?;
                counter.fetch_add(arrays[0].len(), Ordering::Relaxed);
                Ok(ColumnarValue::Array(arrays[0].clone() as ArrayRef))
            }),
        ));
        (ctx, calls)
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.expect(sql).collect().await.expect(sql);
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        text.lines().map(str::to_string).collect()
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        rows(ctx, &format!("EXPLAIN {sql}")).await.join("\n")
    }

    const YOY: &str = "WITH t AS (
            SELECT town, year, sum(counted(amount)) AS total FROM sales GROUP BY town, year)
        SELECT c.town, c.total, p.total AS before, c.total - p.total AS change
        FROM t c LEFT JOIN t p ON p.town = c.town AND p.year = c.year - 1
        WHERE c.year = 2024 AND c.town IN (0, 1, 49) ORDER BY c.town";

    /// Town k's rows are k, k+50, …: the 2023 ones start at k (k + 100j), the 2024
    /// ones at k + 50 (k + 50 + 100j), 20 of each; so a 2024 total is the 2023 one
    /// plus 20 × 50 = 1000.
    const YOY_ANSWER: [&str; 7] = [
        "+------+-------+--------+--------+",
        "| town | total | before | change |",
        "+------+-------+--------+--------+",
        "| 0    | 20000 | 19000  | 1000   |",
        "| 1    | 20020 | 19020  | 1000   |",
        "| 49   | 20980 | 19980  | 1000   |",
        "+------+-------+--------+--------+",
    ];

    #[tokio::test]
    async fn a_cte_read_twice_is_computed_once() {
        let (ctx, calls) = context(256 << 20);
        let explained = plan(&ctx, YOY).await;
        assert_eq!(
            explained.matches("SharedSubplan: id=").count(),
            2,
            "{explained}"
        );
        assert_eq!(
            explained.matches("SharedSubplanExec: id=").count(),
            2,
            "{explained}"
        );
        calls.store(0, Ordering::Relaxed);
        assert_eq!(rows(&ctx, YOY).await, YOY_ANSWER);
        assert_eq!(calls.load(Ordering::Relaxed), 2000, "every row once");
    }

    #[tokio::test]
    async fn rows_too_large_to_keep_are_computed_at_each_reference() {
        // `t` has 100 town-years × 20 × 20 rows = 40,000 rows of three BIGINTs
        // (about 1 MB), more than a quarter of a 2 MiB pool; reading it through a
        // UNION ALL needs little memory.
        let sql = "WITH t AS (SELECT a.town, counted(a.amount) AS amount, b.amount AS b_amount
                              FROM sales a JOIN sales b ON a.town = b.town AND a.year = b.year)
            SELECT count(*) AS n, sum(v) AS total FROM
              (SELECT amount AS v FROM t UNION ALL SELECT b_amount AS v FROM t) u";
        // Each row's amount appears 20 times in each column: 2 × 20 × (0 + … + 1999).
        let answer = [
            "+-------+----------+",
            "| n     | total    |",
            "+-------+----------+",
            "| 80000 | 79960000 |",
            "+-------+----------+",
        ];
        let (ctx, calls) = context(2 << 20);
        // A partitioned join: its inputs are repartitioned, and a RepartitionExec
        // can be executed only once; the occurrence that gave up keeping the rows
        // executes its own input afresh.
        for set in [
            "SET datafusion.optimizer.hash_join_single_partition_threshold = 0",
            "SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 0",
        ] {
            ctx.sql(set).await.expect(set);
        }
        let explained = plan(&ctx, sql).await;
        assert!(explained.contains("SharedSubplanExec"), "{explained}");
        assert!(explained.contains("RepartitionExec"), "{explained}");
        assert_eq!(rows(&ctx, sql).await, answer);
        // Every row twice, after the rows read until the quarter was full (they are
        // dropped, and read again by the occurrence that read them).
        let calls_when_too_large = calls.load(Ordering::Relaxed);
        assert!(
            (80_000..120_000).contains(&calls_when_too_large),
            "{calls_when_too_large}"
        );
        let (ctx, calls) = context(256 << 20);
        assert_eq!(rows(&ctx, sql).await, answer);
        assert_eq!(calls.load(Ordering::Relaxed), 40_000, "every row once");
    }

    #[tokio::test]
    async fn what_is_not_shared() {
        let (ctx, _) = context(256 << 20);
        let not_shared = [
            // Read once.
            "WITH t AS (SELECT town, sum(amount) AS s FROM sales GROUP BY town)
             SELECT * FROM t",
            // Nothing costly to keep: a filter over the table, read twice.
            "WITH t AS (SELECT town, amount FROM sales WHERE year = 2024)
             SELECT count(*) FROM t a JOIN t b ON a.town = b.town",
            // A volatile function: each reference draws its own numbers.
            "WITH t AS (SELECT town, sum(amount) * random() AS s FROM sales GROUP BY town)
             SELECT count(*) FROM t a JOIN t b ON a.town = b.town AND a.s = b.s",
        ];
        for sql in not_shared {
            let explained = plan(&ctx, sql).await;
            assert!(!explained.contains("SharedSubplan"), "{sql}\n{explained}");
        }
        // Two different derived tables are not linked.
        let two = "SELECT count(*) AS n FROM
             (SELECT town, sum(amount) AS s FROM sales WHERE year = 2023 GROUP BY town) a
             JOIN (SELECT town, sum(amount) AS s FROM sales WHERE year = 2024 GROUP BY town) b
             ON a.town = b.town AND b.s = a.s + 1000";
        assert!(!plan(&ctx, two).await.contains("SharedSubplan"));
        assert_eq!(rows(&ctx, two).await[3], "| 50 |");
    }

    #[tokio::test]
    async fn a_recursive_query_executes_its_rounds_afresh() {
        let (ctx, _) = context(256 << 20);
        // The recursive term reads a derived table twice (DataFusion allows one
        // reference to `r` itself). Each round executes a fresh copy of the term:
        // its occurrences are not linked to rows kept by an earlier round.
        let sql = "WITH RECURSIVE r(n) AS (
                SELECT CAST(1 AS BIGINT)
                UNION ALL
                SELECT r.n + 1 FROM r
                JOIN (SELECT min(town) AS m FROM sales GROUP BY year) a ON a.m = 0
                JOIN (SELECT min(town) AS m FROM sales GROUP BY year) b ON b.m = a.m
                WHERE r.n < 3)
            SELECT count(*) AS rows, sum(n) AS total FROM r";
        // Round k has 4^(k-1) rows (two years on each side): 1 + 4 + 16 = 21 rows,
        // n summed 1 + 4·2 + 16·3 = 57.
        let got = rows(&ctx, sql).await;
        assert_eq!(got[3], "| 21   | 57    |", "{got:?}");
        assert!(plan(&ctx, sql).await.contains("SharedSubplanExec"));
    }

    #[tokio::test]
    async fn filters_above_a_shared_plan_stay_above_it() {
        let (ctx, calls) = context(256 << 20);
        // Each reference filters differently: both must see the whole result.
        let sql = "WITH t AS (SELECT town, year, sum(counted(amount)) AS total
                              FROM sales GROUP BY town, year)
            SELECT (SELECT count(*) FROM t WHERE year = 2023) AS y23,
                   (SELECT count(*) FROM t WHERE year = 2024 AND town < 10) AS y24,
                   (SELECT sum(total) FROM t) AS all_total";
        let got = rows(&ctx, sql).await;
        assert_eq!(got[3], "| 50  | 10  | 1999000   |", "{got:?}");
        // DataFusion turns the scalar subqueries into joins of derived tables, and
        // their three copies of `t` are shared.
        assert_eq!(calls.load(Ordering::Relaxed), 2000);
        calls.store(0, Ordering::Relaxed);
        let sql = "WITH t AS (SELECT town, year, sum(counted(amount)) AS total
                              FROM sales GROUP BY town, year)
            SELECT a.n AS y23, b.n AS y24 FROM
              (SELECT count(*) AS n FROM t WHERE year = 2023) a,
              (SELECT count(*) AS n FROM t WHERE year = 2024 AND town < 10) b";
        let got = rows(&ctx, sql).await;
        assert_eq!(got[3], "| 50  | 10  |", "{got:?}");
        assert_eq!(calls.load(Ordering::Relaxed), 2000, "computed once");
    }
}
