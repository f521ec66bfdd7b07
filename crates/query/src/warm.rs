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
//! DataFusion keeps above the scan select their rows. A statement that comes while
//! the background read is still queued or running, and scans the whole table, keeps
//! what its own scan decodes instead ([`Tee`]). A statement with a LIMIT (a preview)
//! does not warm a column. A new run means a new session with new tables, so
//! a warm column never outlives the run it was read from.
//!
//! Memory: every warm table of a process draws on one [`Budget`] (`--warm-tables` on
//! the server, `TOWNSTAT_WARM_TABLES` for the shell; 0 turns it off). Columns that do
//! not fit are read from Parquet as without warm tables; nothing is evicted, and a
//! table's columns are given back when its session ends.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};

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
    /// Held by the one statement's scan of this table whose batches are kept
    /// ([`Tee`]).
    teeing: Arc<tokio::sync::Mutex<()>>,
    /// A statement's scan kept its batches and did not read the table to its end (a
    /// LIMIT above a join, an error): the next cold scan reads in the background.
    tee_missed: AtomicBool,
    /// Held while a statement's batches are cut into chunks and kept ([`Tee::end`]).
    keeping: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Columns {
    /// The table's row count, known once a column has been read.
    rows: Option<usize>,
    /// Column index → its chunks (chunk i holds rows i·CHUNK_ROWS ..).
    chunks: HashMap<usize, Vec<ArrayRef>>,
    /// Column index → an estimate of its distinct values, once counted
    /// ([`Shared::count_distinct`]).
    distinct: HashMap<usize, usize>,
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
                teeing: Arc::new(tokio::sync::Mutex::new(())),
                tee_missed: AtomicBool::new(false),
                keeping: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// Waits until no read of this table's columns is queued or running.
    pub async fn idle(&self) {
        drop(self.shared.loading.lock().await);
        drop(self.shared.teeing.lock().await);
        drop(self.shared.keeping.lock().await);
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
    /// for: query sessions turn DataFusion's work stealing off, which would let a
    /// partition read another's files, [`crate::session::context`]), so columns read
    /// by two statements line up row for row. Returns each
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
        Ok(Some(to_chunks(columns.len(), partitions)?))
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
                .map(|(c, _)| *c)
        };
        if missing.is_empty() {
            return;
        }
        let mut to_read = missing.clone();
        to_read.extend(witness);
        match self.read(state, &to_read, room).await {
            Ok(Some(read)) => {
                if self.keep(&to_read, read, true) {
                    self.count_distinct();
                }
            }
            Ok(None) => {
                let used = self.budget.used();
                self.columns()
                    .refused
                    .extend(missing.iter().map(|c| (*c, used)));
                tracing::info!(table = %self.name, "columns do not fit the warm tables' budget");
            }
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e, "reading columns to keep warm failed; statements read the table");
                self.columns()
                    .refused
                    .extend(missing.iter().map(|c| (*c, 0)));
            }
        }
    }

    /// Keeps the columns of `read` (the chunks of every row of `columns`, from one
    /// scan) that are not held yet, if they line up with the held ones and fit the
    /// budget. Every column of the scan that is held already is the proof that they
    /// line up: it must come back identical, chunk for chunk. A scan that read no
    /// held column proves nothing, and is kept only when nothing is held yet.
    /// Returns whether the new columns are held now.
    fn keep(&self, columns_read: &[usize], read: Vec<Vec<ArrayRef>>, refuse: bool) -> bool {
        let mut columns = self.columns();
        let rows: usize = read
            .first()
            .map(|c| c.iter().map(|a| a.len()).sum())
            .unwrap_or(0);
        let mut witnessed = columns.chunks.is_empty();
        let mut lined_up = columns.rows.is_none_or(|r| r == rows);
        let mut new = Vec::new();
        for (c, chunks) in columns_read.iter().zip(read) {
            match columns.chunks.get(c) {
                Some(held) => {
                    witnessed = true;
                    lined_up &= held.len() == chunks.len()
                        && held
                            .iter()
                            .zip(&chunks)
                            .all(|(a, b)| a.as_ref() == b.as_ref());
                }
                None if !new.iter().any(|(n, _)| n == c) => new.push((*c, chunks)),
                None => {}
            }
        }
        if !lined_up {
            // Not seen with a pinned Delta version; never join columns that do not
            // line up: statements needing these columns read the table itself.
            tracing::warn!(table = %self.name, rows, "warm columns would not line up with the held ones; reading the table");
            if refuse {
                columns.refused.extend(new.iter().map(|(c, _)| (*c, 0)));
            }
            return false;
        }
        if !witnessed {
            return false;
        }
        if new.is_empty() {
            return true;
        }
        let bytes: usize = new.iter().map(|(_, c)| bytes_of(c)).sum();
        if !self.budget.take(bytes) {
            let used = self.budget.used();
            columns.refused.extend(new.iter().map(|(c, _)| (*c, used)));
            tracing::info!(table = %self.name, bytes, "columns do not fit the warm tables' budget");
            return false;
        }
        columns.rows = Some(rows);
        columns.bytes += bytes;
        columns.chunks.extend(new);
        true
    }

    /// Counts the distinct values of the held columns not counted yet, for the
    /// planner ([`crate::distinct`]). Called once columns are kept, by the thread
    /// that kept them at the warmer's priority, with no lock held while it counts: no
    /// statement waits for it, and a scan before it ends reports no count.
    fn count_distinct(&self) {
        let uncounted: Vec<(usize, Vec<ArrayRef>)> = {
            let columns = self.columns();
            columns
                .chunks
                .iter()
                .filter(|(c, _)| !columns.distinct.contains_key(c))
                .map(|(c, chunks)| (*c, chunks.clone()))
                .collect()
        };
        for (c, chunks) in uncounted {
            if let Some(n) = crate::distinct::distinct_count(&chunks) {
                self.columns().distinct.insert(c, n);
            }
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

/// The batches of a scan of `width` columns, partition after partition, as each
/// column's chunks; each column's decoded arrays are dropped once it is copied.
fn to_chunks(width: usize, partitions: Vec<Vec<RecordBatch>>) -> DfResult<Vec<Vec<ArrayRef>>> {
    let mut by_column: Vec<Vec<ArrayRef>> = vec![Vec::new(); width];
    for batch in partitions.into_iter().flatten() {
        for (i, array) in batch.columns().iter().enumerate() {
            by_column[i].push(array.clone());
        }
    }
    by_column
        .into_iter()
        .map(|arrays| chunked(&arrays))
        .collect()
}

/// A column's arrays, one after the other, cut into chunks of [`CHUNK_ROWS`] rows,
/// each copied once into buffers of its own (a slice would keep, and be counted at,
/// the size of the array it was cut from).
fn chunked(arrays: &[ArrayRef]) -> DfResult<Vec<ArrayRef>> {
    let rows: usize = arrays.iter().map(|a| a.len()).sum();
    let mut chunks = Vec::with_capacity(rows.div_ceil(CHUNK_ROWS));
    let mut pending: Vec<ArrayRef> = Vec::new();
    let mut pending_rows = 0;
    for array in arrays {
        let mut start = 0;
        while start < array.len() {
            let len = (CHUNK_ROWS - pending_rows).min(array.len() - start);
            pending.push(array.slice(start, len));
            pending_rows += len;
            start += len;
            if pending_rows == CHUNK_ROWS {
                chunks.push(own(&pending)?);
                pending.clear();
                pending_rows = 0;
            }
        }
    }
    if pending_rows > 0 {
        chunks.push(own(&pending)?);
    }
    Ok(chunks)
}

/// Slices of one column joined into one array with buffers of its own.
fn own(parts: &[ArrayRef]) -> DfResult<ArrayRef> {
    let joined = match parts {
        [one] => one.clone(),
        _ => {
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs)?
        }
    };
    Ok(match joined.data_type() {
        DataType::Utf8View => Arc::new(joined.as_string_view().gc()),
        DataType::BinaryView => Arc::new(joined.as_binary_view().gc()),
        // concat has copied several slices into new buffers already.
        _ if parts.len() > 1 => joined,
        _ => crate::scratch_ipc::owned(&joined)?,
    })
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
        // A statement's columns being kept are a few tens of milliseconds of copying,
        // at the priority of statements: waiting for them is quicker than reading the
        // table again.
        drop(shared.keeping.lock().await);
        let schema = shared.inner.schema();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        enum Cold {
            Read,
            Tee(Arc<Tee>),
            ReadLater(Vec<usize>),
        }
        let found = {
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
                Ok(warm_batches(&columns, &schema, &wanted)?)
            } else {
                let used = shared.budget.used();
                let refused = missing.iter().any(|c| {
                    columns.refused.get(c).is_some_and(|then| used >= *then)
                        || !warmable(schema.field(*c).data_type())
                });
                let worth_reading =
                    !missing.is_empty() && !refused && !shared.budget.full() && limit.is_none();
                drop(columns);
                if !worth_reading {
                    Err(Cold::Read)
                } else if filters.is_empty()
                    && !wanted.is_empty()
                    && shared.loading.try_lock().is_err()
                    && !shared.tee_missed.swap(false, Ordering::AcqRel)
                    && let Some(tee) = Tee::start(shared, &wanted)
                {
                    // The table is still being read in the background (statements
                    // come one after the other and the CPU is busy): a scan of the
                    // whole table (no filter to prune files or row groups with)
                    // keeps the batches it decodes for the statement.
                    Err(Cold::Tee(tee))
                } else {
                    // The first statement to find the columns cold leaves them to a
                    // read in the background, and is no slower for it.
                    Err(Cold::ReadLater(missing))
                }
            }
        };
        let (batches, projected, distinct) = match found {
            Ok(warm) => warm,
            Err(Cold::Read) => return shared.inner.scan(state, projection, filters, limit).await,
            Err(Cold::Tee(tee)) => {
                let plan = shared.inner.scan(state, projection, &[], None).await?;
                return Ok(Arc::new(TeeExec::new(plan, tee)));
            }
            Err(Cold::ReadLater(missing)) => {
                self.read_later(state, missing);
                return shared.inner.scan(state, projection, filters, limit).await;
            }
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
        let counted = crate::distinct::Counted::new(Arc::new(exec), distinct);
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(counted))
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

/// The held chunks of `wanted`, as batches of the projected schema, and the distinct
/// count of each column of it, where counted.
fn warm_batches(
    columns: &Columns,
    schema: &SchemaRef,
    wanted: &[usize],
) -> DfResult<(Vec<RecordBatch>, SchemaRef, Vec<Option<usize>>)> {
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
    let distinct = wanted
        .iter()
        .map(|c| columns.distinct.get(c).copied())
        .collect();
    Ok((batches, projected, distinct))
}

/// A statement's scan of a whole table whose batches are kept as they pass, to become
/// warm columns once every partition has been read to its end: the statement decodes
/// the columns anyway, and the statements after it then find them warm with no second
/// read. Only while the table's background read is queued or running (statements
/// back to back, where the reader at its low priority gets little CPU): holding the
/// batches makes the statement's own scan slower (fresh memory for every batch),
/// which the first statement on a table should not pay.
///
/// The scan is the provider's, with no filter and no limit, so a partition read to
/// its end has given every row of its files; its partitions joined in order are the
/// table's rows in the order a background read gives them, and [`Shared::keep`]
/// still checks that against a held column. A scan that stops early (a LIMIT above a
/// join, an error) keeps nothing, and the next cold scan of the table reads in the
/// background as before.
struct Tee {
    shared: Arc<Shared>,
    /// The table's columns, in the scan's order.
    columns: Vec<usize>,
    state: std::sync::Mutex<TeeState>,
}

#[derive(Default)]
struct TeeState {
    /// Each partition's batches so far (sized at the first partition's start).
    partitions: Vec<Vec<RecordBatch>>,
    started: Vec<bool>,
    finished: usize,
    /// Bytes of the batches held, taken from the budget.
    reserved: usize,
    /// The table's teeing lock: `None` once the tee is over (kept or missed).
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tee {
    /// A tee of `columns`, unless another statement's scan of the table is one.
    fn start(shared: &Arc<Shared>, columns: &[usize]) -> Option<Arc<Tee>> {
        let guard = shared.teeing.clone().try_lock_owned().ok()?;
        Some(Arc::new(Tee {
            shared: shared.clone(),
            columns: columns.to_vec(),
            state: std::sync::Mutex::new(TeeState {
                guard: Some(guard),
                ..TeeState::default()
            }),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TeeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Partition `partition` of a scan of `count` starts; whether its batches are to
    /// be kept (not when the tee is over, or the partition ran already: a plan
    /// executed again).
    fn begin(&self, partition: usize, count: usize) -> bool {
        let mut state = self.state();
        if state.guard.is_none() {
            return false;
        }
        if state.started.is_empty() {
            state.started = vec![false; count];
            state.partitions = vec![Vec::new(); count];
        }
        if state.started.len() != count || state.started.get(partition) != Some(&false) {
            self.miss(&mut state);
            return false;
        }
        state.started[partition] = true;
        true
    }

    /// Keeps a batch of `partition`; false when the tee is over (the batches would
    /// not fit the budget).
    fn batch(&self, partition: usize, batch: &RecordBatch) -> bool {
        let mut state = self.state();
        if state.guard.is_none() {
            return false;
        }
        let size = batch.get_array_memory_size();
        if !self.shared.budget.take(size) {
            self.miss(&mut state);
            return false;
        }
        state.reserved += size;
        state.partitions[partition].push(batch.clone());
        true
    }

    /// A partition was read to its end; after the last, its columns are cut into
    /// chunks and kept, on a thread of their own (the statement does not wait).
    fn end(&self) {
        let mut state = self.state();
        if state.guard.is_none() {
            return;
        }
        state.finished += 1;
        if state.finished < state.started.len() {
            return;
        }
        let partitions = std::mem::take(&mut state.partitions);
        let guard = state.guard.take();
        let keeping = self.shared.keeping.clone().try_lock_owned().ok();
        // The batches are counted again, as chunks, when they are kept.
        self.shared
            .budget
            .give_back(std::mem::take(&mut state.reserved));
        drop(state);
        let (shared, columns) = (self.shared.clone(), self.columns.clone());
        let keep = move || {
            let kept = match to_chunks(columns.len(), partitions) {
                Ok(chunks) => shared.keep(&columns, chunks, false),
                Err(e) => {
                    tracing::warn!(table = %shared.name, error = %e, "keeping a statement's columns warm failed");
                    false
                }
            };
            if !kept {
                shared.tee_missed.store(true, Ordering::Release);
            }
            drop(keeping);
            if kept {
                lower_priority();
                shared.count_distinct();
            }
            drop(guard);
        };
        if let Err(e) = std::thread::Builder::new()
            .name("townstat-warm-keep".into())
            .spawn(keep)
        {
            tracing::warn!(table = %self.shared.name, error = %e, "keeping a statement's columns warm failed");
            self.shared.tee_missed.store(true, Ordering::Release);
        }
    }

    /// The tee is over without keeping anything.
    fn abandon(&self) {
        let mut state = self.state();
        self.miss(&mut state);
    }

    fn miss(&self, state: &mut TeeState) {
        if state.guard.take().is_some() {
            state.partitions.clear();
            self.shared
                .budget
                .give_back(std::mem::take(&mut state.reserved));
            self.shared.tee_missed.store(true, Ordering::Release);
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // A plan dropped with partitions not executed (EXPLAIN, a statement that
        // failed elsewhere): give the budget back.
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.shared
            .budget
            .give_back(std::mem::take(&mut state.reserved));
    }
}

/// The nodes a tee'd scan may be made of after physical optimization: they give a
/// partition's rows in the order of its files. A repartition (added when a table's
/// one file could not be split) would interleave them.
fn scan_in_file_order(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let name = plan.name();
    [
        "DataSourceExec",
        "DeltaScan",
        "ProjectionExec",
        "CoalesceBatchesExec",
        "CooperativeExec",
    ]
    .iter()
    .any(|n| name.starts_with(n))
        && plan.children().into_iter().all(scan_in_file_order)
}

/// The scan of a [`Tee`]: its input's batches, unchanged, kept as they pass.
struct TeeExec {
    input: Arc<dyn ExecutionPlan>,
    tee: Arc<Tee>,
}

impl TeeExec {
    fn new(input: Arc<dyn ExecutionPlan>, tee: Arc<Tee>) -> TeeExec {
        TeeExec { input, tee }
    }
}

impl fmt::Debug for TeeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmTeeExec")
            .field("table", &self.tee.shared.name)
            .finish()
    }
}

impl DisplayAs for TeeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WarmTeeExec: table={}", self.tee.shared.name)
    }
}

impl ExecutionPlan for TeeExec {
    fn name(&self) -> &str {
        "WarmTeeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    /// No repartition between the scan and the tee (see [`scan_in_file_order`]); one
    /// above it is as good.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    /// The scan's statistics, whole and per partition: joins choose their build side
    /// by them.
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        match input_stats.first() {
            Some(stats) => Ok(stats.clone()),
            None => Ok(Arc::new(Statistics::new_unknown(&self.schema()))),
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("a warm tee has one input".into())
        })?;
        // Copies share the tee: a partition executed twice (by two copies) ends it.
        Ok(Arc::new(TeeExec::new(input, self.tee.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let inner = self.input.execute(partition, ctx)?;
        let count = self.input.output_partitioning().partition_count();
        let live = if scan_in_file_order(&self.input) {
            self.tee.begin(partition, count)
        } else {
            self.tee.abandon();
            false
        };
        Ok(Box::pin(TeeStream {
            inner,
            tee: self.tee.clone(),
            partition,
            live,
        }))
    }
}

struct TeeStream {
    inner: SendableRecordBatchStream,
    tee: Arc<Tee>,
    partition: usize,
    /// Its batches are being kept, and it has not ended.
    live: bool,
}

impl futures::Stream for TeeStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use futures::StreamExt;
        use std::task::Poll;
        let this = self.get_mut();
        let next = this.inner.poll_next_unpin(cx);
        if this.live {
            match &next {
                Poll::Ready(Some(Ok(batch))) => this.live = this.tee.batch(this.partition, batch),
                Poll::Ready(Some(Err(_))) => {
                    this.live = false;
                    this.tee.abandon();
                }
                Poll::Ready(None) => {
                    this.live = false;
                    this.tee.end();
                }
                Poll::Pending => {}
            }
        }
        next
    }
}

impl datafusion::physical_plan::RecordBatchStream for TeeStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for TeeStream {
    fn drop(&mut self) {
        // Dropped before its end: the statement stopped reading.
        if self.live {
            self.tee.abandon();
        }
    }
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

    /// `inner` as a warm table on `budget`, registered in `ctx` as `name`.
    fn warm(
        ctx: &datafusion::prelude::SessionContext,
        name: &str,
        inner: Arc<dyn TableProvider>,
        budget: &Arc<Budget>,
    ) -> Arc<WarmTable> {
        let t = Arc::new(WarmTable::new(name, inner, budget.clone()));
        ctx.register_table(name, t.clone()).expect("register");
        t
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
        let t = warm(&ctx, "t", source(), &budget);
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
        // Both are counted (exactly, at this size), and a scan of them, its columns in
        // another order, tells the planner (crate::distinct).
        let plan = ctx
            .sql("SELECT s, n FROM t")
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let stats = datafusion::physical_plan::statistics::StatisticsContext::new()
            .compute(plan.as_ref(), &StatisticsArgs::new())
            .expect("statistics");
        let distinct: Vec<_> = stats
            .column_statistics
            .iter()
            .map(|c| c.distinct_count)
            .collect();
        use datafusion::common::stats::Precision;
        assert_eq!(distinct, [Precision::Inexact(20_000); 2]);
        // The columns are given back with the table.
        ctx.deregister_table("t").expect("deregister");
        drop(t);
        assert_eq!(budget.used(), 0);
    }

    /// A table that counts its scans; an unstable one gives its partitions in another
    /// order when `s` is read.
    #[derive(Debug)]
    struct Probe {
        inner: Arc<dyn TableProvider>,
        scans: AtomicUsize,
        unstable: bool,
    }

    fn probe(unstable: bool) -> Arc<Probe> {
        Arc::new(Probe {
            inner: source(),
            scans: AtomicUsize::new(0),
            unstable,
        })
    }

    #[async_trait]
    impl TableProvider for Probe {
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
            filters: &[Expr],
            limit: Option<usize>,
        ) -> DfResult<Arc<dyn ExecutionPlan>> {
            self.scans.fetch_add(1, Ordering::SeqCst);
            if !self.unstable {
                return self.inner.scan(state, projection, filters, limit).await;
            }
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
        let unstable = probe(true);
        let t = warm(&ctx, "t", unstable, &budget);
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
    async fn a_statement_during_a_background_read_keeps_what_its_scan_decodes() {
        let budget = Budget::new(64 << 20);
        let ctx = crate::session::context_with_limit(256 << 20);
        let source = probe(false);
        let t = warm(&ctx, "t", source.clone(), &budget);
        ctx.register_table("cold", super::tests::source())
            .expect("register");
        let sum = "SELECT sum(n) AS total, min(s) AS first FROM {}";
        // As if a background read of the table were queued: the statement keeps
        // what its scan decodes.
        let queued = t.shared.loading.clone().lock_owned().await;
        assert_eq!(
            one(&ctx, &sum.replace("{}", "t")).await,
            one(&ctx, &sum.replace("{}", "cold")).await
        );
        drop(queued);
        t.idle().await;
        // Kept from the statement's own scan: no second read of the table.
        assert_eq!(source.scans.load(Ordering::SeqCst), 1);
        assert!(
            budget.used() >= 20_000 * 8 + 20_000 * 5,
            "{}",
            budget.used()
        );
        for q in [
            sum,
            "SELECT n, s FROM {} WHERE s IN ('x0', 'x8191', 'x8192', 'x19999') ORDER BY n",
            "SELECT count(*) AS misaligned FROM {} WHERE s <> concat('x', CAST(n AS VARCHAR))",
        ] {
            assert_eq!(
                one(&ctx, &q.replace("{}", "t")).await,
                one(&ctx, &q.replace("{}", "cold")).await,
                "{q}"
            );
        }
        assert_eq!(source.scans.load(Ordering::SeqCst), 1, "answered warm");
    }

    #[tokio::test]
    async fn a_statement_that_stops_early_keeps_nothing_and_the_next_reads_in_the_background() {
        let budget = Budget::new(64 << 20);
        let ctx = crate::session::context_with_limit(256 << 20);
        let source = probe(false);
        let t = warm(&ctx, "t", source.clone(), &budget);
        ctx.sql("CREATE TABLE few AS VALUES (3), (5)")
            .await
            .expect("few")
            .collect()
            .await
            .expect("few");
        // The LIMIT stays above the join: the scan of `t` stops after a batch or two.
        let queued = t.shared.loading.clone().lock_owned().await;
        let first = one(
            &ctx,
            "SELECT t.n FROM t JOIN few ON t.n % 7 = few.column1 LIMIT 1",
        )
        .await;
        assert_eq!(first.lines().count(), 5, "{first}");
        drop(queued);
        t.idle().await;
        assert_eq!(budget.used(), 0, "a scan that stopped early keeps nothing");
        assert_eq!(source.scans.load(Ordering::SeqCst), 1);
        // The next cold statement is answered from the table and its column read
        // in the background (a second scan), then answered warm.
        sum_twice(&ctx, &t).await;
        assert_eq!(source.scans.load(Ordering::SeqCst), 3);
        assert!(budget.used() >= 20_000 * 8, "{}", budget.used());
    }

    #[tokio::test]
    async fn a_column_that_does_not_fit_and_a_preview_are_read_from_the_table() {
        let budget = Budget::new(1024);
        let ctx = crate::session::context_with_limit(256 << 20);
        let t = warm(&ctx, "t", source(), &budget);
        sum_twice(&ctx, &t).await;
        assert_eq!(budget.used(), 0, "nothing kept past the budget");
        let roomy = Budget::new(64 << 20);
        let p = warm(&ctx, "p", source(), &roomy);
        let preview = one(&ctx, "SELECT n FROM p LIMIT 3").await;
        p.idle().await;
        assert_eq!(preview.lines().count(), 7, "{preview}");
        assert_eq!(roomy.used(), 0, "a LIMIT does not warm a column");
    }
}
