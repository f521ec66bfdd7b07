//! The result cache: between two nightly runs the warehouse does not change, so a
//! statement a dashboard repeats — the same statement text (as parsed and printed
//! again, so spacing and keyword case do not matter), the same parameter values, the
//! same committed run — has the same answer, and the server sends it from memory.
//!
//! - **Keyed on the run.** Every entry belongs to the run its statement read. The
//!   server checks the run record before every statement (`Source::current`); the
//!   first statement after a new run commits reads the new run, misses, and the entry
//!   it stores clears every entry of the older run. A row of an older run is never
//!   sent once a newer run is visible.
//! - **Only what cannot differ.** A statement is cached only when its plan reads
//!   warehouse tables and nothing else: no catalog table (`pg_catalog`,
//!   `information_schema`: they answer per connection), no literal row set (the
//!   connection's `pg_stat_activity` is rewritten into one), and no function whose
//!   answer may change between two calls (`now()`, `random()`, `current_user`,
//!   `pg_backend_pid()` — anything not immutable).
//! - **Bounded in bytes.** `--result-cache` (default 256MiB, 0 turns it off) bounds
//!   the Arrow memory of all entries; one answer larger than an eighth of it is not
//!   kept. The least recently used entries go first. An answer is stored only when
//!   every row was produced: a statement cancelled, timed out or failed stores
//!   nothing.
//! - **Before planning.** The statement is parsed and passes the server's policy as
//!   every statement does; then a stored answer is sent without planning or
//!   executing it. Only statements that were planned, found read-only and cacheable
//!   have answers stored, and the same text with the same parameter values on the
//!   same run plans the same.
//! - **Executed once when many ask at once.** When a dashboard opens after a nightly
//!   run, its viewers send the same chart queries together, before any answer is
//!   stored. A cacheable statement that another connection is already executing on
//!   the same run waits for that execution ([`ResultCache::claim`]) and is then
//!   answered from the cache; if that execution stored nothing (it failed, was
//!   cancelled, or its answer was too large to keep), the waiting statement executes
//!   itself. An answer is stored when its last row has been sent, so a client that
//!   reads slowly would hold the others up: a statement waits at most
//!   [`FLIGHT_WAIT`], then executes itself. It waits once: after a wait it executes
//!   whatever it finds.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::sql::sqlparser;
use futures::Stream;

/// What identifies an answer within one run: the statement as printed from its parse
/// tree, and the parameter values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    statement: String,
    params: String,
}

impl Key {
    pub(crate) fn new(statement: String, params: String) -> Key {
        Key { statement, params }
    }
}

struct Entry {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    run_id: String,
    entries: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
    /// Statements being executed, by run and key: a receiver that reports the end
    /// of the execution (its sender is dropped).
    flights: HashMap<(String, Key), tokio::sync::watch::Receiver<()>>,
}

/// The longest a statement waits for another connection's execution of it. Chart
/// queries take milliseconds to a few hundred; past this, the other execution is
/// more likely held up by a slow client than still running.
pub(crate) const FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`ResultCache::claim`] says about a statement no answer is stored for.
pub(crate) enum Claim {
    /// No other connection is executing it: execute it, and keep the flight until
    /// the answer is stored or the execution has ended without one.
    Execute(Flight),
    /// Another connection is executing it: [`Claim::Wait`]'s receiver reports the
    /// end of that execution; then look the answer up again.
    Wait(tokio::sync::watch::Receiver<()>),
}

/// An execution of a cacheable statement that statements with the same key on the
/// same run wait for. Dropping it (after storing the answer, or without one) ends
/// their wait.
pub(crate) struct Flight {
    cache: Arc<ResultCache>,
    slot: (String, Key),
    _done: tokio::sync::watch::Sender<()>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Removed before the sender is dropped (the fields are dropped after this):
        // once a wait has ended, a new claim of the statement finds no flight.
        self.cache.lock().flights.remove(&self.slot);
    }
}

/// The answers of recent statements on the current run, bounded in bytes.
pub(crate) struct ResultCache {
    limit: usize,
    inner: Mutex<Inner>,
}

impl ResultCache {
    /// A cache of at most `limit` bytes; `None` when `limit` is 0 (off).
    pub(crate) fn new(limit: usize) -> Option<Arc<ResultCache>> {
        (limit > 0).then(|| {
            Arc::new(ResultCache {
                limit,
                inner: Mutex::new(Inner::default()),
            })
        })
    }

    /// The largest answer kept.
    pub(crate) fn entry_limit(&self) -> usize {
        self.limit / 8
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves a consistent map (every update is a
        // single insert or remove): keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored answer of `key` on `run_id`, if there is one.
    pub(crate) fn get(&self, run_id: &str, key: &Key) -> Option<(SchemaRef, Vec<RecordBatch>)> {
        let mut inner = self.lock();
        if inner.run_id != run_id {
            return None;
        }
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(key)?;
        entry.used = now;
        Some((entry.schema.clone(), entry.batches.clone()))
    }

    /// Stores the complete answer of `key` on `run_id`. An answer of a newer run
    /// clears the older run's; an answer of an older run than the cache holds (a
    /// statement that started before a run committed and finished after) is dropped.
    pub(crate) fn put(&self, run_id: &str, key: Key, schema: SchemaRef, batches: Vec<RecordBatch>) {
        let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        if bytes > self.entry_limit() {
            return;
        }
        let mut inner = self.lock();
        match admit(&inner.run_id, run_id) {
            Admit::Older => return,
            Admit::Newer => {
                inner.entries.clear();
                inner.bytes = 0;
                inner.run_id = run_id.to_string();
            }
            Admit::Same => {}
        }
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.bytes;
        }
        while inner.bytes + bytes > self.limit {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes;
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.bytes += bytes;
        inner.entries.insert(
            key,
            Entry {
                schema,
                batches,
                bytes,
                used,
            },
        );
    }

    /// For a statement no answer is stored for: execute it, or wait for the
    /// connection already executing it on this run.
    pub(crate) fn claim(self: &Arc<Self>, run_id: &str, key: &Key) -> Claim {
        let slot = (run_id.to_string(), key.clone());
        let mut inner = self.lock();
        if let Some(running) = inner.flights.get(&slot) {
            return Claim::Wait(running.clone());
        }
        let (done, running) = tokio::sync::watch::channel(());
        inner.flights.insert(slot.clone(), running);
        Claim::Execute(Flight {
            cache: self.clone(),
            slot,
            _done: done,
        })
    }

    /// Entries and bytes held (tests, logs).
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }
}

/// How an entry of `run_id` relates to the run a cache holds (`held`, empty when it
/// holds none): both caches keep one run, a newer run's first entry clears the older
/// run's, and an entry of an older run (a statement that started before a run
/// committed and finished after) is dropped. Run ids start with their UTC start time,
/// so they order as the runs do.
enum Admit {
    Same,
    Newer,
    Older,
}

fn admit(held: &str, run_id: &str) -> Admit {
    if held == run_id {
        Admit::Same
    } else if !held.is_empty() && run_id < held {
        Admit::Older
    } else {
        Admit::Newer
    }
}

/// Plans of the statements clients prepare, on the current run.
///
/// psycopg, JDBC and BI tools send every statement as `Parse`, `Bind`, `Execute`, and
/// `Parse` plans it to tell the client its parameter and result types: under a
/// dashboard that planning was a large part of a repeated chart query's time, whose
/// answer the result cache already had (pgbench, extended protocol, 50 clients: 2,368
/// statements/s, 3,188 with plans kept). A plan is kept only when [`cacheable`] says it
/// depends on nothing but the run (warehouse tables, immutable functions), so it is
/// the same for every connection; it is keyed on the statement as printed from its
/// parse tree, and a plan of an older run is never used once a newer run is visible
/// (the run is part of every lookup, and the first plan of a newer run clears the
/// older ones). At most [`PlanCache::LIMIT`] plans are kept; when full, the cache
/// starts again empty. `Execute` plans again unless the result cache answers.
#[derive(Default)]
pub(crate) struct PlanCache {
    inner: Mutex<Plans>,
}

#[derive(Default)]
struct Plans {
    run_id: String,
    plans: HashMap<String, LogicalPlan>,
}

impl PlanCache {
    /// Plans kept at most (a plan of a dashboard query is a few kilobytes).
    pub(crate) const LIMIT: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, Plans> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plan of `statement` on `run_id`, if one is kept.
    pub(crate) fn get(&self, run_id: &str, statement: &str) -> Option<LogicalPlan> {
        let inner = self.lock();
        if inner.run_id != run_id {
            return None;
        }
        inner.plans.get(statement).cloned()
    }

    /// Keeps the plan of `statement` on `run_id` when it depends only on the run.
    pub(crate) fn put(&self, run_id: &str, statement: String, plan: &LogicalPlan) {
        if !cacheable(plan) {
            return;
        }
        let mut inner = self.lock();
        match admit(&inner.run_id, run_id) {
            Admit::Older => return,
            Admit::Newer => {
                inner.plans.clear();
                inner.run_id = run_id.to_string();
            }
            Admit::Same => {}
        }
        if inner.plans.len() >= Self::LIMIT {
            inner.plans.clear();
        }
        inner.plans.insert(statement, plan.clone());
    }
}

/// Statements as the server parsed them, keyed on the SQL text a client sent.
///
/// Parsing is the same for every connection and every run: the text is parsed,
/// datafusion-pg-catalog's rules and the compatibility rewrites are applied, and
/// `SET` names are normalized, all from the text alone. Under a dashboard, whose
/// viewers send the same dozen texts again and again, that was the largest part of
/// a statement the result cache answers: a third of the server's CPU time (perf,
/// pgbench with 50 clients). Only texts that parsed and passed the complexity check
/// are kept, so a refused or malformed text is refused and logged every time. At
/// most [`ParseCache::LIMIT`] texts, of at most [`ParseCache::TEXT_LIMIT`] bytes each
/// and [`ParseCache::BYTES_LIMIT`] together, are kept (a parse tree is some tens of
/// times its text, so a few tens of MB at worst); when full, the cache starts again
/// empty.
#[derive(Default)]
pub(crate) struct ParseCache {
    inner: Mutex<Parsed>,
}

#[derive(Default)]
struct Parsed {
    texts: HashMap<String, Vec<sqlparser::ast::Statement>>,
    /// The bytes of the texts kept.
    bytes: usize,
}

impl ParseCache {
    /// Texts kept at most.
    pub(crate) const LIMIT: usize = 1024;
    /// The longest text kept: longer ones are rare, and their planning and execution
    /// dwarf their parsing.
    pub(crate) const TEXT_LIMIT: usize = 16 << 10;
    /// The bytes of all texts kept (a dashboard's chart query is a few hundred).
    pub(crate) const BYTES_LIMIT: usize = 512 << 10;

    fn lock(&self) -> std::sync::MutexGuard<'_, Parsed> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statements `sql` parsed into, if they are kept.
    pub(crate) fn get(&self, sql: &str) -> Option<Vec<sqlparser::ast::Statement>> {
        self.lock().texts.get(sql).cloned()
    }

    /// Keeps what `sql` parsed into.
    pub(crate) fn put(&self, sql: &str, statements: &[sqlparser::ast::Statement]) {
        if sql.len() > Self::TEXT_LIMIT {
            return;
        }
        let mut inner = self.lock();
        if inner.texts.len() >= Self::LIMIT || inner.bytes + sql.len() > Self::BYTES_LIMIT {
            inner.texts.clear();
            inner.bytes = 0;
        }
        if inner
            .texts
            .insert(sql.to_string(), statements.to_vec())
            .is_none()
        {
            inner.bytes += sql.len();
        }
    }
}

/// Whether a statement's answer depends only on the run: its plan (subqueries
/// included) scans at least one table, every table it scans is a warehouse table,
/// it has no literal row set, and every function it calls is immutable.
pub(crate) fn cacheable(plan: &LogicalPlan) -> bool {
    let mut scans = 0;
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                scans += 1;
                let warehouse = scan.table_name.schema().is_none_or(|s| s == "public")
                    && scan.table_name.catalog().is_none_or(|c| c == "datafusion");
                if !warehouse {
                    ok = false;
                }
            }
            LogicalPlan::Values(_) => ok = false,
            _ => {}
        }
        let _ = node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    ok = false;
                }
                Ok(if ok {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            })
        });
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok && scans > 0
}

/// A record batch stream that keeps a copy of what passes (up to `limit` bytes) and,
/// when the stream ends without an error, hands the copy to `done`.
pub(crate) struct Tee {
    inner: SendableRecordBatchStream,
    kept: Option<Vec<RecordBatch>>,
    bytes: usize,
    limit: usize,
    done: Option<Box<dyn FnOnce(Vec<RecordBatch>) + Send>>,
}

impl Tee {
    pub(crate) fn new(
        inner: SendableRecordBatchStream,
        limit: usize,
        done: Box<dyn FnOnce(Vec<RecordBatch>) + Send>,
    ) -> Tee {
        Tee {
            inner,
            kept: Some(vec![]),
            bytes: 0,
            limit,
            done: Some(done),
        }
    }
}

impl Stream for Tee {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(batch))) => {
                this.bytes += batch.get_array_memory_size();
                if this.bytes > this.limit {
                    // Nothing will be stored: `done` (and a flight it holds) goes now,
                    // not when the client has read the last row.
                    this.kept = None;
                    this.done = None;
                } else if let Some(kept) = &mut this.kept {
                    kept.push(batch.clone());
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.kept = None;
                this.done = None;
            }
            Poll::Ready(None) => {
                if let (Some(kept), Some(done)) = (this.kept.take(), this.done.take()) {
                    done(kept);
                }
            }
            Poll::Pending => {}
        }
        next
    }
}

impl RecordBatchStream for Tee {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;

    fn batch(rows: usize) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..rows as i64))],
        )
        .expect("batch");
        (schema, b)
    }

    fn key(s: &str) -> Key {
        Key::new(s.into(), String::new())
    }

    #[test]
    fn a_newer_run_clears_the_older_one_and_bytes_stay_bounded() {
        let (schema, b) = batch(1000);
        let size = b.get_array_memory_size();
        let cache = ResultCache::new(size * 8).expect("on");
        cache.put("run-1", key("a"), schema.clone(), vec![b.clone()]);
        assert!(cache.get("run-1", &key("a")).is_some());
        // Another run's statement never sees run-1's answer.
        assert!(cache.get("run-2", &key("a")).is_none());
        cache.put("run-2", key("b"), schema.clone(), vec![b.clone()]);
        assert!(cache.get("run-1", &key("a")).is_none(), "cleared");
        assert_eq!(cache.size().0, 1);
        // A statement of the older run finishing late stores nothing.
        cache.put("run-1", key("a"), schema.clone(), vec![b.clone()]);
        assert!(cache.get("run-1", &key("a")).is_none());
        // The bound: the least recently used goes first.
        for k in ["c", "d", "e", "f", "g", "h", "i", "j", "k"] {
            cache.put("run-2", key(k), schema.clone(), vec![b.clone()]);
            assert!(
                cache.get("run-2", &key("b")).is_some(),
                "b is used, so kept"
            );
        }
        let (entries, bytes) = cache.size();
        assert!(bytes <= size * 8, "{bytes}");
        assert_eq!(entries, 8, "eight answers of one eighth each");
        assert!(
            cache.get("run-2", &key("c")).is_none(),
            "c was the least recent"
        );
        // An answer larger than an eighth of the cache is not kept.
        let (_, big) = batch(100_000);
        cache.put("run-2", key("big"), schema, vec![big]);
        assert!(cache.get("run-2", &key("big")).is_none());
        assert!(ResultCache::new(0).is_none(), "0 is off");
    }

    #[tokio::test]
    async fn a_statement_being_executed_is_waited_for_not_executed_again() {
        let (schema, b) = batch(10);
        let cache = ResultCache::new(1 << 20).expect("on");
        let Claim::Execute(flight) = cache.claim("run-1", &key("a")) else {
            panic!("nothing was running");
        };
        let Claim::Wait(mut waiting) = cache.claim("run-1", &key("a")) else {
            panic!("the same statement on the same run waits");
        };
        // Another statement, or the same one on another run, does not wait.
        assert!(matches!(cache.claim("run-1", &key("b")), Claim::Execute(_)));
        assert!(matches!(cache.claim("run-2", &key("a")), Claim::Execute(_)));
        let waiter = tokio::spawn(async move {
            // Ends when the flight is dropped, whatever it did.
            let _ = waiting.changed().await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "still executing");
        cache.put("run-1", key("a"), schema, vec![b]);
        drop(flight);
        waiter.await.expect("the wait ended");
        assert!(
            cache.get("run-1", &key("a")).is_some(),
            "answered from the cache"
        );

        // An execution that stored nothing ends the wait too; the next claim executes.
        let Claim::Execute(failed) = cache.claim("run-1", &key("c")) else {
            panic!("nothing was running");
        };
        let Claim::Wait(mut waiting) = cache.claim("run-1", &key("c")) else {
            panic!("waits");
        };
        drop(failed);
        let _ = waiting.changed().await;
        assert!(cache.get("run-1", &key("c")).is_none());
        assert!(matches!(cache.claim("run-1", &key("c")), Claim::Execute(_)));
    }

    #[tokio::test]
    async fn only_statements_of_warehouse_tables_with_immutable_functions() {
        let ctx = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_information_schema(true),
        );
        let (_, b) = batch(3);
        ctx.register_batch("town_year", b).expect("register");
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                ctx.state()
                    .create_logical_plan(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        };
        for (sql, expected) in [
            ("SELECT sum(n) FROM town_year WHERE n > 1", true),
            (
                "SELECT abs(n) FROM town_year WHERE n IN (SELECT n FROM town_year)",
                true,
            ),
            ("SELECT n, now() FROM town_year", false),
            ("SELECT n FROM town_year WHERE random() < 0.5", false),
            ("SELECT 1", false),
            ("SELECT * FROM (VALUES (1), (2)) AS v(n)", false),
            ("SELECT table_name FROM information_schema.tables", false),
        ] {
            assert_eq!(cacheable(&plan(sql).await), expected, "{sql}");
        }
    }

    #[tokio::test]
    async fn a_plan_is_kept_per_run_and_only_when_it_depends_on_the_run_alone() {
        let ctx = SessionContext::new();
        let (_, b) = batch(3);
        ctx.register_batch("town_year", b).expect("register");
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { ctx.state().create_logical_plan(sql).await.expect("plans") }
        };
        let plans = PlanCache::default();
        let sum = "SELECT sum(n) FROM town_year WHERE n > $1";
        let kept = plan(sum).await;
        plans.put("run-1", sum.into(), &kept);
        assert_eq!(plans.get("run-1", sum), Some(kept.clone()));
        assert_eq!(plans.get("run-2", sum), None, "another run plans again");
        let now = "SELECT n, now() FROM town_year";
        plans.put("run-1", now.into(), &plan(now).await);
        assert_eq!(plans.get("run-1", now), None, "now() is not kept");
        // The first plan of a newer run clears the older run's; an older run's plan
        // arriving late is not kept.
        plans.put(
            "run-2",
            "SELECT n FROM town_year".into(),
            &plan("SELECT n FROM town_year").await,
        );
        assert_eq!(plans.get("run-1", sum), None);
        plans.put("run-1", sum.into(), &kept);
        assert_eq!(plans.get("run-1", sum), None);
        assert_eq!(plans.get("run-2", sum), None);
        // Bounded: past the limit it starts again.
        for i in 0..=PlanCache::LIMIT {
            plans.put("run-2", format!("q{i}"), &kept);
        }
        assert!(plans.lock().plans.len() <= PlanCache::LIMIT);
        assert!(
            plans
                .get("run-2", &format!("q{}", PlanCache::LIMIT))
                .is_some()
        );
    }

    #[test]
    fn a_parsed_text_is_kept_bounded_in_count_and_length() {
        use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        let parse = |sql: &str| Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        let parsed = ParseCache::default();
        let sql = "SELECT town_id FROM town_year WHERE year = 2025; SELECT 1";
        assert_eq!(parsed.get(sql), None);
        parsed.put(sql, &parse(sql));
        assert_eq!(parsed.get(sql), Some(parse(sql)));
        assert_eq!(
            parsed.get("select town_id from town_year where year = 2025; select 1"),
            None,
            "keyed on the text as sent"
        );
        // A text longer than the bound is parsed every time.
        let long = format!(
            "SELECT {} AS n",
            "1 + ".repeat(ParseCache::TEXT_LIMIT / 4) + "1"
        );
        parsed.put(&long, &parse(&long));
        assert_eq!(parsed.get(&long), None);
        // Bounded: past the limit it starts again.
        for i in 0..=ParseCache::LIMIT {
            let text = format!("SELECT {i}");
            parsed.put(&text, &parse(&text));
        }
        assert!(parsed.lock().texts.len() <= ParseCache::LIMIT);
        assert!(
            parsed
                .get(&format!("SELECT {}", ParseCache::LIMIT))
                .is_some()
        );
        // And in bytes: texts of 16 KiB fill it after 32.
        let big = |i: usize| format!("SELECT {i} AS n{}", " ".repeat(ParseCache::TEXT_LIMIT - 40));
        let fit = ParseCache::BYTES_LIMIT / ParseCache::TEXT_LIMIT;
        for i in 0..=fit {
            parsed.put(&big(i), &parse(&big(i)));
            assert!(parsed.lock().bytes <= ParseCache::BYTES_LIMIT);
        }
        assert!(parsed.get(&big(fit)).is_some());
        assert!(
            parsed.get(&big(0)).is_none(),
            "cleared when the bytes ran out"
        );
    }
}
