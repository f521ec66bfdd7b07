//! Warm tables: the columns a long-lived session's statements read, kept decoded in
//! memory.
//!
//! Between two runs the warehouse does not change, and a session is pinned to one
//! run's table versions. The server and an interactive `townstat sql` shell answer
//! many statements from one session, and most of an ad-hoc statement's time went to
//! decoding the same Parquet columns again. A [`WarmTable`] wraps a table's provider.
//! The first statement that reads a column of it is answered from the table, as
//! without warm tables, while a background reader at a lower CPU priority decodes the
//! whole column (every row, in the order of the table's files) and keeps it in chunks
//! of [`CHUNK_ROWS`] rows; the statements after it read those chunks, and the filters
//! DataFusion keeps above the scan select their rows. A statement with a LIMIT (a
//! preview) does not warm a column. A new run means a new session with new tables, so
//! a warm column never outlives the run it was read from.
//!
//! Memory: every warm table of a process draws on one [`Budget`] (`--warm-tables` on
//! the server, `TOWNSTAT_WARM_TABLES` for the shell; 0 turns it off). Columns that do
//! not fit are read from Parquet as without warm tables; nothing is evicted, and a
//! table's columns are given back when its session ends.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// Rows per warm chunk: DataFusion's batch size, so a chunk is one batch.
pub const CHUNK_ROWS: usize = 8192;

/// The bytes every warm table of a process may hold together.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|n| *n <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn full(&self) -> bool {
        self.used() >= self.limit
    }
}

/// A table provider whose columns, once read, are kept decoded.
pub struct WarmTable {
    shared: Arc<Shared>,
}

/// What a [`WarmTable`] shares with the background read of its columns.
struct Shared {
    name: String,
    inner: Arc<dyn TableProvider>,
    budget: Arc<Budget>,
    columns: std::sync::Mutex<Columns>,
    /// Held by the one background read of this table's columns, queued or running.
    loading: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Columns {
    /// The table's row count, known once a column has been read.
    rows: Option<usize>,
    /// Column index → its chunks (chunk i holds rows i·CHUNK_ROWS ..).
    chunks: HashMap<usize, Vec<ArrayRef>>,
    /// Bytes taken from the budget.
    bytes: usize,
    /// Columns found not to fit the budget, with the budget's use then: read again
    /// only once the budget holds less (a replaced run's tables gave theirs back).
    /// Columns that did not line up, or whose reading failed, are held at 0: never
    /// read again.
    refused: HashMap<usize, usize>,
}

impl WarmTable {
    pub fn new(name: &str, inner: Arc<dyn TableProvider>, budget: Arc<Budget>) -> WarmTable {
        WarmTable {
            shared: Arc::new(Shared {
                name: name.to_string(),
                inner,
                budget,
                columns: std::sync::Mutex::new(Columns::default()),
                loading: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// Waits until no read of this table's columns is queued or running.
    pub async fn idle(&self) {
        drop(self.shared.loading.lock().await);
    }
}

impl Shared {
    fn columns(&self) -> std::sync::MutexGuard<'_, Columns> {
        // A panic while the lock was held left the map whole (every update is one
        // insert), so a poisoned lock is still read.
        self.columns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the listed columns of every row, in the order of the table's files: the
    /// partitions of the provider's scan are read concurrently and their rows joined
    /// in partition order (a partition reads its files, and their row groups, in
    /// order, and which files a partition reads does not depend on the columns asked
    /// for), so columns read by two statements line up row for row. Returns each
    /// column's chunks, or `None` as soon as the decoded columns hold more than `cap`
    /// bytes (the reading stops there: a table too large for the budget is not
    /// decoded whole only to be dropped).
    async fn read(
        &self,
        state: &dyn Session,
        columns: &[usize],
        cap: usize,
    ) -> DfResult<Option<Vec<Vec<ArrayRef>>>> {
        use futures::StreamExt;
        let plan = self
            .inner
            .scan(state, Some(&columns.to_vec()), &[], None)
            .await?;
        let held = AtomicUsize::new(0);
        let ctx = state.task_ctx();
        let reads = (0..plan.output_partitioning().partition_count()).map(|i| {
            let (plan, ctx, held) = (plan.clone(), ctx.clone(), &held);
            async move {
                let mut stream = plan.execute(i, ctx)?;
                let mut batches = Vec::new();
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    let size = batch.get_array_memory_size();
                    if held.fetch_add(size, Ordering::Relaxed) + size > cap {
                        return Ok(None);
                    }
                    batches.push(batch);
                }
                Ok::<_, datafusion::error::DataFusionError>(Some(batches))
            }
        });
        let mut partitions = Vec::new();
        for part in futures::future::try_join_all(reads).await? {
            match part {
                Some(batches) => partitions.push(batches),
                None => return Ok(None),
            }
        }
        // One column at a time: its arrays joined, then cut into chunks, and its
        // decoded batches' share dropped before the next column.
        let mut by_column: Vec<Vec<ArrayRef>> = vec![Vec::new(); columns.len()];
        for batch in partitions.into_iter().flatten() {
            for (i, array) in batch.columns().iter().enumerate() {
                by_column[i].push(array.clone());
            }
        }
        let mut out = Vec::with_capacity(columns.len());
        for (i, arrays) in by_column.into_iter().enumerate() {
            let parts: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            let whole = if parts.is_empty() {
                arrow::array::new_empty_array(self.inner.schema().field(columns[i]).data_type())
            } else {
                arrow::compute::concat(&parts)?
            };
            drop(parts);
            drop(arrays);
            out.push(chunked(&whole)?);
        }
        Ok(Some(out))
    }

    /// Reads `missing` and keeps them, if they fit the budget and line up with the
    /// columns held. Runs in the background ([`warmer`]), one read per table at a
    /// time: statements meanwhile read the table itself.
    async fn load(&self, state: &dyn Session, mut missing: Vec<usize>) {
        let room = self.budget.limit.saturating_sub(self.budget.used());
        let witness = {
            let columns = self.columns();
            // A read that ended after the statement asked for this one may have
            // kept some of these columns already.
            missing.retain(|c| !columns.chunks.contains_key(c));
            // A column already held is read again beside the new ones (the
            // smallest), and must come back identical: proof that the new columns
            // line up with the held ones row for row, whatever the provider's order.
            columns
                .chunks
                .iter()
                .min_by_key(|(_, chunks)| bytes_of(chunks))
                .map(|(c, chunks)| (*c, chunks.clone()))
        };
        if missing.is_empty() {
            return;
        }
        let mut to_read = missing.clone();
        to_read.extend(witness.as_ref().map(|(c, _)| *c));
        let read = match self.read(state, &to_read, room).await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e, "reading columns to keep warm failed; statements read the table");
                self.columns()
                    .refused
                    .extend(missing.iter().map(|c| (*c, 0)));
                return;
            }
        };
        let mut columns = self.columns();
        let Some(mut read) = read else {
            let used = self.budget.used();
            columns.refused.extend(missing.iter().map(|c| (*c, used)));
            tracing::info!(table = %self.name, "columns do not fit the warm tables' budget");
            return;
        };
        let lined_up = match &witness {
            None => true,
            Some((_, held)) => {
                let again = read.pop().unwrap_or_default();
                again.len() == held.len()
                    && again
                        .iter()
                        .zip(held)
                        .all(|(a, b)| a.as_ref() == b.as_ref())
            }
        };
        let rows: usize = read[0].iter().map(|c| c.len()).sum();
        if !lined_up || columns.rows.is_some_and(|r| r != rows) {
            // Not seen with a pinned Delta version; never join columns that do not
            // line up: statements needing these columns read the table itself.
            tracing::warn!(table = %self.name, rows, "warm columns would not line up with the held ones; reading the table");
            columns.refused.extend(missing.iter().map(|c| (*c, 0)));
            return;
        }
        let bytes: usize = read.iter().map(|c| bytes_of(c)).sum();
        if !self.budget.take(bytes) {
            let used = self.budget.used();
            columns.refused.extend(missing.iter().map(|c| (*c, used)));
            tracing::info!(table = %self.name, bytes, "columns do not fit the warm tables' budget");
            return;
        }
        columns.rows = Some(rows);
        columns.bytes += bytes;
        for (c, chunks) in missing.into_iter().zip(read) {
            columns.chunks.insert(c, chunks);
        }
    }
}

/// A read of columns to keep warm, run by the [`warmer`].
type Job = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The process's one background reader of warm columns: a thread of its own, at a
/// lower CPU priority than the threads answering statements, running one read at a
/// time. A statement that finds its columns not yet warm is answered from the table
/// (as fast as without warm tables) while the warmer reads them for the statements
/// after it; on a busy machine the warmer takes what the statements leave.
fn warmer() -> Option<&'static tokio::sync::mpsc::UnboundedSender<Job>> {
    static WARMER: std::sync::OnceLock<Option<tokio::sync::mpsc::UnboundedSender<Job>>> =
        std::sync::OnceLock::new();
    WARMER
        .get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("townstat-warm-io")
                .build();
            let runtime = match runtime {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "no warm tables: the background reader did not start");
                    return None;
                }
            };
            let started = std::thread::Builder::new()
                .name("townstat-warm".into())
                .spawn(move || {
                    lower_priority();
                    runtime.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            job.await;
                        }
                    });
                });
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no warm tables: the background reader did not start");
                    None
                }
            }
        })
        .as_ref()
}

/// Lowers the calling thread's CPU priority to the lowest (nice 19; threads it starts
/// inherit it): under load it gets about 1.5 % of a core beside a statement's thread.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on the calling thread's id
    // only changes its scheduling weight, and a failure leaves it unchanged.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}

/// Whether a column of this type is kept warm: types whose copies own their bytes
/// (a nested or dictionary column could keep a whole decoded page alive per chunk).
fn warmable(data_type: &DataType) -> bool {
    !(data_type.is_nested() || matches!(data_type, DataType::Dictionary(..)))
}

/// An array cut into chunks of [`CHUNK_ROWS`] rows, each in buffers of its own (a
/// slice would keep, and be counted at, the size of the whole).
fn chunked(whole: &ArrayRef) -> DfResult<Vec<ArrayRef>> {
    let mut chunks = Vec::with_capacity(whole.len().div_ceil(CHUNK_ROWS));
    let mut start = 0;
    while start < whole.len() {
        let len = CHUNK_ROWS.min(whole.len() - start);
        let slice = whole.slice(start, len);
        let copy: ArrayRef = match slice.data_type() {
            DataType::Utf8View => Arc::new(slice.as_string_view().gc()),
            DataType::BinaryView => Arc::new(slice.as_binary_view().gc()),
            _ => crate::scratch_ipc::owned(&slice)?,
        };
        chunks.push(copy);
        start += len;
    }
    Ok(chunks)
}

fn bytes_of(chunks: &[ArrayRef]) -> usize {
    chunks.iter().map(|c| c.get_array_memory_size()).sum()
}

impl fmt::Debug for WarmTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmTable")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let bytes = self
            .columns
            .get_mut()
            .map(|c| c.bytes)
            .unwrap_or_else(|poisoned| poisoned.into_inner().bytes);
        self.budget.give_back(bytes);
    }
}

#[async_trait]
impl TableProvider for WarmTable {
    fn schema(&self) -> SchemaRef {
        self.shared.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.shared.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: DataFusion keeps every filter above the scan. A warm scan ignores
        // them; one read from Parquet passes them on for pruning.
        Ok(filters
            .iter()
            .map(|_| TableProviderFilterPushDown::Inexact)
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let shared = &self.shared;
        let schema = shared.inner.schema();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let batches = {
            let columns = shared.columns();
            let mut missing: Vec<usize> = wanted
                .iter()
                .copied()
                .filter(|c| !columns.chunks.contains_key(c))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            // A statement reading no column (a count) needs the row count: the first
            // column that can be kept is read once.
            if wanted.is_empty() && columns.rows.is_none() {
                missing.extend(
                    (0..schema.fields().len()).find(|c| warmable(schema.field(*c).data_type())),
                );
            }
            if missing.is_empty() && (!wanted.is_empty() || columns.rows.is_some()) {
                Some(warm_batches(&columns, &schema, &wanted)?)
            } else {
                let used = shared.budget.used();
                let refused = missing.iter().any(|c| {
                    columns.refused.get(c).is_some_and(|then| used >= *then)
                        || !warmable(schema.field(*c).data_type())
                });
                let worth_reading =
                    !missing.is_empty() && !refused && !shared.budget.full() && limit.is_none();
                drop(columns);
                if worth_reading {
                    self.read_later(state, missing);
                }
                None
            }
        };
        let Some((batches, projected)) = batches else {
            return shared.inner.scan(state, projection, filters, limit).await;
        };
        // Contiguous runs of chunks, one per target partition.
        let parts = state.config().target_partitions().max(1);
        let per = batches.len().div_ceil(parts).max(1);
        let mut partitions: Vec<Vec<RecordBatch>> = Vec::with_capacity(parts);
        let mut it = batches.into_iter().peekable();
        while it.peek().is_some() {
            partitions.push(it.by_ref().take(per).collect());
        }
        if partitions.is_empty() {
            partitions.push(vec![]);
        }
        let exec = MemorySourceConfig::try_new(&partitions, projected, None)?.with_limit(limit);
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(exec))
    }
}

impl WarmTable {
    /// Queues a background read of `missing`, unless one of this table's is queued or
    /// running already (a later statement asks again).
    fn read_later(&self, state: &dyn Session, missing: Vec<usize>) {
        // The lock first: the session is cloned only for a read that will be queued.
        let Ok(guard) = self.shared.loading.clone().try_lock_owned() else {
            return;
        };
        let Some(warmer) = warmer() else {
            return;
        };
        let Some(state) = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
            .cloned()
        else {
            return;
        };
        let shared = self.shared.clone();
        let job: Job = Box::pin(async move {
            shared.load(&state, missing).await;
            drop(guard);
        });
        // The warmer runs as long as the process: a send does not fail.
        let _ = warmer.send(job);
    }
}

/// The held chunks of `wanted`, as batches of the projected schema.
fn warm_batches(
    columns: &Columns,
    schema: &SchemaRef,
    wanted: &[usize],
) -> DfResult<(Vec<RecordBatch>, SchemaRef)> {
    let rows = columns.rows.unwrap_or(0);
    let projected = Arc::new(schema.project(wanted)?);
    let n_chunks = rows.div_ceil(CHUNK_ROWS);
    let mut batches = Vec::with_capacity(n_chunks);
    for i in 0..n_chunks {
        let len = CHUNK_ROWS.min(rows - i * CHUNK_ROWS);
        let arrays: Vec<ArrayRef> = wanted
            .iter()
            .map(|c| columns.chunks[c][i].clone())
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(len));
        batches.push(RecordBatch::try_new_with_options(
            projected.clone(),
            arrays,
            &options,
        )?);
    }
    Ok((batches, projected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;

    /// 20,000 rows in three partitions of uneven batches: `n` and `s = 'x' || n`.
    fn source() -> Arc<dyn TableProvider> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = |from: i64, to: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(from..to)),
                    Arc::new(StringArray::from_iter_values(
                        (from..to).map(|n| format!("x{n}")),
                    )),
                ],
            )
            .expect("batch")
        };
        let partitions = vec![
            vec![batch(0, 5000), batch(5000, 5001)],
            vec![batch(5001, 12000)],
            vec![batch(12000, 19999), batch(19999, 20000)],
        ];
        Arc::new(MemTable::try_new(schema, partitions).expect("table"))
    }

    async fn one(ctx: &datafusion::prelude::SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.expect(sql).collect().await.expect(sql);
        arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string()
    }

    /// `sum(n)` of `t` twice: from the table while `n` is read in the background,
    /// then (if kept) from the warm column.
    async fn sum_twice(ctx: &datafusion::prelude::SessionContext, t: &WarmTable) {
        for _ in 0..2 {
            assert!(
                one(ctx, "SELECT sum(n) AS total FROM t")
                    .await
                    .contains("199990000")
            );
            t.idle().await;
        }
    }

    #[tokio::test]
    async fn warm_columns_answer_as_the_table_does_line_up_and_give_their_memory_back() {
        let budget = Budget::new(64 << 20);
        let ctx = crate::session::context_with_limit(256 << 20);
        let t = Arc::new(WarmTable::new("t", source(), budget.clone()));
        ctx.register_table("t", t.clone()).expect("register");
        ctx.register_table("cold", source()).expect("register");
        let queries = [
            "SELECT sum(n) AS total, count(*) AS rows FROM {} WHERE n % 3 = 0",
            // `s` is read by a later statement than `n`: the two must line up.
            "SELECT count(*) AS misaligned FROM {} WHERE s <> concat('x', CAST(n AS VARCHAR))",
            "SELECT n, s FROM {} WHERE s IN ('x0', 'x8191', 'x8192', 'x19999') ORDER BY n",
            "SELECT count(*) AS rows FROM {}",
        ];
        // Each statement twice: first answered from the table while its columns are
        // read in the background, then from the warm columns.
        for q in queries {
            for _ in 0..2 {
                assert_eq!(
                    one(&ctx, &q.replace("{}", "t")).await,
                    one(&ctx, &q.replace("{}", "cold")).await,
                    "{q}"
                );
                t.idle().await;
            }
        }
        assert!(
            one(&ctx, &queries[1].replace("{}", "t"))
                .await
                .contains("| 0 ")
        );
        // Both columns are held now, and counted: 20,000 i64 and their strings.
        let held = budget.used();
        assert!(held >= 20_000 * 8 + 20_000 * 5, "{held}");
        assert!(held < 2 << 20, "{held}");
        // The columns are given back with the table.
        ctx.deregister_table("t").expect("deregister");
        drop(t);
        assert_eq!(budget.used(), 0);
    }

    /// A table whose partitions come in another order when `s` is read.
    #[derive(Debug)]
    struct Unstable {
        inner: Arc<dyn TableProvider>,
    }

    #[async_trait]
    impl TableProvider for Unstable {
        fn schema(&self) -> SchemaRef {
            self.inner.schema()
        }
        fn table_type(&self) -> TableType {
            TableType::Base
        }
        async fn scan(
            &self,
            state: &dyn Session,
            projection: Option<&Vec<usize>>,
            _filters: &[Expr],
            _limit: Option<usize>,
        ) -> DfResult<Arc<dyn ExecutionPlan>> {
            let plan = self.inner.scan(state, projection, &[], None).await?;
            let mut parts =
                datafusion::physical_plan::collect_partitioned(plan, state.task_ctx()).await?;
            // Scans reading `s` see the partitions in another order.
            let turn = usize::from(projection.is_some_and(|p| p.contains(&1)));
            parts.rotate_left(turn);
            let schema = match projection {
                Some(p) => Arc::new(self.inner.schema().project(p)?),
                None => self.inner.schema(),
            };
            Ok(MemorySourceConfig::try_new_exec(&parts, schema, None)?)
        }
    }

    #[tokio::test]
    async fn columns_that_would_not_line_up_are_read_from_the_table() {
        let budget = Budget::new(64 << 20);
        let ctx = crate::session::context_with_limit(256 << 20);
        let unstable = Arc::new(Unstable { inner: source() });
        let t = Arc::new(WarmTable::new("t", unstable, budget.clone()));
        ctx.register_table("t", t.clone()).expect("register");
        sum_twice(&ctx, &t).await;
        let held = budget.used();
        assert!(held > 0);
        // `s` read by a scan whose rows come in another order: refused, and the
        // answer is still the table's.
        let misaligned =
            "SELECT count(*) AS misaligned FROM t WHERE s <> concat('x', CAST(n AS VARCHAR))";
        for _ in 0..3 {
            assert!(one(&ctx, misaligned).await.contains("| 0 "));
            t.idle().await;
        }
        assert_eq!(budget.used(), held, "nothing more kept");
        assert!(t.shared.columns().refused.contains_key(&1), "s refused");
    }

    #[tokio::test]
    async fn a_column_that_does_not_fit_and_a_preview_are_read_from_the_table() {
        let budget = Budget::new(1024);
        let ctx = crate::session::context_with_limit(256 << 20);
        let t = Arc::new(WarmTable::new("t", source(), budget.clone()));
        ctx.register_table("t", t.clone()).expect("register");
        sum_twice(&ctx, &t).await;
        assert_eq!(budget.used(), 0, "nothing kept past the budget");
        let roomy = Budget::new(64 << 20);
        let p = Arc::new(WarmTable::new("p", source(), roomy.clone()));
        ctx.register_table("p", p.clone()).expect("register");
        let preview = one(&ctx, "SELECT n FROM p LIMIT 3").await;
        p.idle().await;
        assert_eq!(preview.lines().count(), 7, "{preview}");
        assert_eq!(roomy.used(), 0, "a LIMIT does not warm a column");
    }
}
