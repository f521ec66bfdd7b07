//! Query handling: the pinned warehouse, the statement policy, per-query limits, and
//! the simple and extended query protocols.
//!
//! - **Pinned and fresh.** Every statement reads the tables of one committed run. Before
//!   each statement the server checks the run record's Delta version; when a nightly
//!   run has committed since, it opens a session on the new run (tables, catalog,
//!   labels) and later statements use it. Statements already running finish on the
//!   run they started with.
//! - **Read-only.** `policy::check` on the parsed statement, then DataFusion's read-only
//!   `SQLOptions::verify_plan` on its plan.
//! - **Bounded.** Each statement runs in its own memory pool (`query_memory`; sorts,
//!   joins and aggregations spill past it), and under one deadline that covers
//!   parsing, planning, execution *and* sending the rows: when it passes, or when the
//!   client sends a cancel request, the statement ends with SQLSTATE 57014 and the
//!   execution is dropped, which stops its tasks. When the client hangs up, the same
//!   happens (`server.rs` watches the socket).
//! - **Planned off the workers.** Statement text is bounded in size and nesting before
//!   it is parsed (`complexity`, SQLSTATE 54001). Planning, optimizing and starting
//!   the execution run on a blocking thread ([`off_thread`]), so that a long planning
//!   neither holds a runtime worker nor escapes the deadline: the client gets its
//!   57014 on time, and the planning stops at its next await point.
//! - **A panic is an error.** A panic while a statement is parsed, planned or
//!   streamed (DataFusion has some, see `docs/serve.md`) is caught and answered with
//!   SQLSTATE XX000; the connection and the server go on.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use crate::ceiling::{Ceiling, Registration};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{DFSchema, DataFusionError, ParamValues};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatementWrapper;
use datafusion::sql::sqlparser::ast::Reset;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::datafusion_pg_catalog::sql::rules::{self, SqlStatementRewriteRule};
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire;
use futures::{FutureExt, Sink, StreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;
use tokio::sync::{Mutex, RwLock, watch};
use tokio::time::Instant;
use townstat_warehouse::{RunSelector, Warehouse};

use crate::auth::CancelSlot;
use crate::complexity;
use crate::policy::{self, Verdict};
use crate::server::{Busy, Life};

/// A prepared statement as datafusion-postgres's hooks expect it: the SQL, and the
/// parsed statement with its plan.
pub(crate) type Prepared = (String, Option<(Statement, LogicalPlan)>);

/// The metadata key under which datafusion-postgres's `SET statement_timeout` keeps
/// the client's timeout, in milliseconds.
const CLIENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// A session on one committed run, with the PostgreSQL catalog set up.
pub(crate) struct Pinned {
    pub(crate) run_id: String,
    pub(crate) ctx: SessionContext,
    /// The same run on a cluster (`--cluster`), for statements that read warehouse
    /// tables.
    cluster: Option<SessionContext>,
    run_log_version: Option<i64>,
}

/// The warehouse as the server serves it: the current pinned run, replaced when a
/// newer run commits.
pub(crate) struct Source {
    warehouse: Warehouse,
    cluster: Option<String>,
    current: RwLock<Arc<Pinned>>,
    reload: Mutex<()>,
    /// Memory for the columns statements read, kept decoded (`--warm-tables`); none
    /// when off or on a cluster.
    warm: Option<Arc<townstat_query::warm::Budget>>,
}

impl Source {
    pub(crate) async fn open(
        warehouse: Warehouse,
        cluster: Option<String>,
        warm_tables: usize,
    ) -> crate::Result<Source> {
        let warm = (warm_tables > 0 && cluster.is_none())
            .then(|| townstat_query::warm::Budget::new(warm_tables));
        let pinned = Self::load(&warehouse, cluster.as_deref(), warm.as_ref()).await?;
        Ok(Source {
            warehouse,
            cluster,
            current: RwLock::new(Arc::new(pinned)),
            reload: Mutex::new(()),
            warm,
        })
    }

    async fn load(
        warehouse: &Warehouse,
        cluster: Option<&str>,
        warm: Option<&Arc<townstat_query::warm::Budget>>,
    ) -> crate::Result<Pinned> {
        // The version is read before the session opens: if a run commits in between,
        // the next statement sees a newer version and reloads, never the reverse.
        let run_log_version = warehouse
            .run_record_version()
            .await
            .map_err(townstat_query::Error::from)?;
        let session = townstat_query::open_session_at(warehouse, &RunSelector::Latest).await?;
        if let Some(budget) = warm {
            // One budget for the server: a replaced run's columns are given back
            // when its last statement ends.
            session.warm(budget)?;
        }
        crate::catalog::install(&session.ctx).await?;
        let cluster = match cluster {
            Some(url) => {
                let ctx = townstat_cluster::remote_context(url)
                    .await
                    .map_err(|e| crate::Error::Config(e.to_string()))?;
                let files = warehouse.clone().with_file_tables();
                let selector = RunSelector::Id(session.run.run_id.clone());
                Some(
                    townstat_query::open_session_in(ctx, &files, &selector)
                        .await?
                        .ctx,
                )
            }
            None => None,
        };
        tracing::info!(run_id = %session.run.run_id, "serving run");
        Ok(Pinned {
            run_id: session.run.run_id,
            ctx: session.ctx,
            cluster,
            run_log_version,
        })
    }

    /// The session of the last committed run, reloading it if a run committed since.
    pub(crate) async fn current(&self) -> PgWireResult<Arc<Pinned>> {
        let unreadable = |e| server_error("XX000", format!("cannot read the run record: {e}"));
        let current = self.current.read().await.clone();
        // One existence check of the run record's next version, not a listing.
        if !self
            .warehouse
            .run_record_advanced(current.run_log_version)
            .await
            .map_err(unreadable)?
        {
            return Ok(current);
        }
        let latest = self
            .warehouse
            .run_record_version()
            .await
            .map_err(unreadable)?;
        let _one_reload_at_a_time = self.reload.lock().await;
        let current = self.current.read().await.clone();
        if current.run_log_version == latest {
            return Ok(current);
        }
        let fresh = Arc::new(
            Self::load(&self.warehouse, self.cluster.as_deref(), self.warm.as_ref())
                .await
                .map_err(|e| server_error("XX000", format!("cannot open the new run: {e}")))?,
        );
        *self.current.write().await = fresh.clone();
        Ok(fresh)
    }
}

/// Limits applied to every statement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) statement_timeout: Duration,
    pub(crate) query_memory: usize,
    /// Resident memory of the whole server beyond which the largest statement is
    /// cancelled (`ceiling`); 0 for none.
    pub(crate) memory_ceiling: usize,
}

/// The query handler shared by every connection.
pub(crate) struct Service {
    source: Arc<Source>,
    limits: Limits,
    /// Answers of repeated statements on the current run (`cache`); none when off.
    cache: Option<Arc<crate::cache::ResultCache>>,
    ceiling: Arc<Ceiling>,
    hooks: Vec<Arc<dyn QueryHook>>,
    parser: Arc<Parser>,
}

impl Service {
    pub(crate) fn new(source: Arc<Source>, limits: Limits, result_cache: usize) -> Service {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        Service {
            parser: Arc::new(Parser {
                source: source.clone(),
                limits,
                sql: PostgresCompatibilityParser::new(),
                data_rules: vec![
                    Box::new(rules::AliasDuplicatedProjectionRewrite),
                    Box::new(rules::ResolveUnqualifiedIdentifier),
                    Box::new(rules::RewriteArrayAnyAllOperation),
                    Box::new(rules::PrependUnqualifiedPgTableName),
                    Box::new(rules::StripCallableQualifier),
                    Box::new(rules::FixArrayLiteral),
                    Box::new(rules::CurrentUserVariableToSessionUserFunctionCall),
                    Box::new(rules::StripCollate),
                    Box::new(rules::RewritePgCatalogOperator),
                    Box::new(rules::RewriteRegCastToSubquery::new()),
                    Box::new(rules::FixVersionColumnName),
                ],
                hooks: hooks.clone(),
                plans: crate::cache::PlanCache::default(),
                parsed: crate::cache::ParseCache::default(),
            }),
            source,
            limits,
            cache: crate::cache::ResultCache::new(result_cache),
            ceiling: Ceiling::start(limits.memory_ceiling),
            hooks,
        }
    }

    /// The deadline of a statement starting now: the server's timeout, or the
    /// client's `statement_timeout` when it is shorter.
    fn deadline<C: ClientInfo + ?Sized>(&self, client: &C) -> (Instant, Duration) {
        deadline(&self.limits, client)
    }

    /// A context for one statement: the pinned run's tables and functions, with a
    /// memory pool of its own.
    ///
    /// On a cluster, a statement that reads warehouse tables runs there (each
    /// executor has its own memory pool); catalog statements run here, where the
    /// PostgreSQL catalog is.
    fn statement_context<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        pinned: &Pinned,
        statement: &Statement,
    ) -> PgWireResult<SessionContext> {
        if let Some(cluster) = &pinned.cluster
            && !reads_only_catalog(statement)
        {
            return Ok(cluster.clone());
        }
        let memory = self.limits.query_memory;
        let state = pinned.ctx.state();
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(Arc::new(FairSpillPool::new(memory)))
            .build_arc()
            .map_err(engine_error)?;
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build();
        // A sort keeps this much back for merging its spill files: a fraction of the
        // pool, so that a small pool spills instead of failing.
        state
            .config_mut()
            .options_mut()
            .execution
            .sort_spill_reservation_bytes = (memory / 8).min(10 << 20);
        let ctx = SessionContext::new_with_state(state);
        session_functions(client, &ctx);
        Ok(ctx)
    }

    /// The statement as it is planned ([`with_session_relations`]) and, with the
    /// result cache on, the key of its answer: the statement as printed from its parse
    /// tree, and the parameters.
    fn keyed<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        statement: &Statement,
        params: Option<&ParamValues>,
    ) -> Keyed {
        let statement = with_session_relations(client, statement);
        let key = self.cache.clone().map(|cache| {
            let key = crate::cache::Key::new(statement.to_string(), format!("{params:?}"));
            (cache, key)
        });
        Keyed { statement, key }
    }

    /// A repeated statement's answer on this run, from the result cache: no context,
    /// no planning and no thread hand-off, but the same deadline, cancel and hang-up
    /// as an executed statement's rows ([`bounded`]). An answer is only ever stored
    /// for a statement that was planned, found read-only and found to depend on
    /// nothing but the run (`cache::cacheable`), so a repeat is answered before
    /// planning: the same text on the same run plans the same. datafusion-postgres's
    /// hooks, which run before planning, answer only statements that are not
    /// queries (`SET`, `SHOW`, transactions, cursors), which are never stored.
    fn cached<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        run_id: &str,
        keyed: &Keyed,
        format: &Format,
        deadline: (Instant, Duration),
    ) -> Option<PgWireResult<Response>> {
        let (cache, key) = keyed.key.as_ref()?;
        let (schema, batches) = cache.get(run_id, key)?;
        tracing::debug!(run_id = %run_id, "result cache hit");
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let rows = futures::stream::iter(batches.into_iter().map(Ok));
        Some(encode_rows(&schema, rows, format, options).map(|response| {
            Response::Query(bounded(response, deadline, Stops::of(client), busy(client)))
        }))
    }

    /// Runs a query: planning, optimizing, physical planning and the start of the
    /// execution off the runtime's workers and within the deadline ([`off_thread`]),
    /// then the rows bounded by [`bounded`].
    async fn execute<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        (run_id, ctx): (&str, &SessionContext),
        keyed: Keyed,
        params: Option<ParamValues>,
        format: &Format,
        deadline: (Instant, Duration),
    ) -> PgWireResult<Response> {
        let mut stops = Stops::of(client);
        // The statement is a candidate for the memory ceiling until its rows are sent.
        let (registration, evicted) = self.ceiling.register(ctx.runtime_env().memory_pool.clone());
        stops.evicted = Some((evicted, self.ceiling.limit(), registration));
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let (ctx, Keyed { statement, key }, format) = (ctx.clone(), keyed, format.clone());
        let run_id = run_id.to_string();
        let start = async move {
            let plan = plan_read_only(&ctx, &statement).await?;
            let key = key.filter(|_| crate::cache::cacheable(&plan));
            // A cacheable statement another connection is executing on this run is
            // waited for, then answered from the cache (`cache::ResultCache::claim`).
            let mut flight = None;
            if let Some((cache, key)) = &key {
                let mut waited = false;
                loop {
                    if let Some((schema, batches)) = cache.get(&run_id, key) {
                        tracing::debug!(run_id = %run_id, waited, "result cache hit after planning");
                        let rows = futures::stream::iter(batches.into_iter().map(Ok));
                        return encode_rows(&schema, rows, &format, options);
                    }
                    if waited {
                        // The execution waited for stored nothing: execute, without
                        // making others wait again (they would queue behind each
                        // other when an answer is too large to keep).
                        break;
                    }
                    match cache.claim(&run_id, key) {
                        crate::cache::Claim::Execute(f) => {
                            flight = Some(f);
                            break;
                        }
                        crate::cache::Claim::Wait(mut running) => {
                            // Ends when that execution stored its answer or ended
                            // without one, or at the bound.
                            let _ =
                                tokio::time::timeout(crate::cache::FLIGHT_WAIT, running.changed())
                                    .await;
                            waited = true;
                        }
                    }
                }
            }
            let plan = match params {
                Some(params) => plan
                    .replace_params_with_values(&params)
                    .map_err(engine_error)?,
                None => plan,
            };
            let df = ctx.execute_logical_plan(plan).await.map_err(engine_error)?;
            let schema: datafusion::arrow::datatypes::SchemaRef =
                Arc::new(df.schema().as_arrow().clone());
            let stream = df.execute_stream().await.map_err(engine_error)?;
            match key {
                Some((cache, key)) => {
                    let (kept_schema, limit) = (schema.clone(), cache.entry_limit());
                    // The flight ends once the answer is stored, or when the stream
                    // is dropped without one (an error, a cancel, too large).
                    let done = Box::new(move |batches| {
                        cache.put(&run_id, key, kept_schema, batches);
                        drop(flight);
                    });
                    let tee = crate::cache::Tee::new(stream, limit, done);
                    encode_rows(&schema, tee, &format, options)
                }
                None => encode_rows(&schema, stream, &format, options),
            }
        };
        let response = off_thread(start, deadline, &mut stops).await?;
        Ok(Response::Query(bounded(
            response,
            deadline,
            stops,
            busy(client),
        )))
    }

    fn log_refusal<C: ClientInfo + ?Sized>(client: &C, sql: &str, refusal: &policy::Refusal) {
        let shown: String = sql.chars().take(200).collect();
        tracing::warn!(
            peer = %client.socket_addr(),
            user = client.metadata().get(METADATA_USER).map(String::as_str).unwrap_or(""),
            sqlstate = refusal.code,
            reason = %refusal.message,
            statement = %shown,
            "statement refused"
        );
    }
}

/// The deadline of a statement starting now: the server's timeout, or the client's
/// `statement_timeout` when it is shorter.
fn deadline<C: ClientInfo + ?Sized>(limits: &Limits, client: &C) -> (Instant, Duration) {
    let client_ms = client
        .metadata()
        .get(CLIENT_TIMEOUT_KEY)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    let limit = client_ms
        .map(|c| c.min(limits.statement_timeout))
        .unwrap_or(limits.statement_timeout);
    (Instant::now() + limit, limit)
}

/// The functions whose answer depends on the connection: `pg_backend_pid()` (this
/// connection's backend process id, the one its cancel key names), and
/// `pg_cancel_backend(pid)` / `pg_terminate_backend(pid)`, which cancel the statement
/// another connection of the same user is running, as a cancel request would. That is
/// how Superset's "Stop query" works: it reads pg_backend_pid() on the connection that
/// runs the query, and calls pg_terminate_backend with it from another. A terminated
/// connection is not closed here: its statement stops with SQLSTATE 57014 and the
/// connection stays usable (the server keeps no session state worth a reconnect).
fn session_functions<C: ClientInfo + ?Sized>(client: &C, ctx: &SessionContext) {
    use datafusion::arrow::array::{Array, AsArray, BooleanArray};
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let Some(slot) = client.session_extensions().get::<CancelSlot>() else {
        return;
    };
    let pid = slot.pid();
    let cancels = slot.cancels();
    let user = client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default();
    ctx.register_udf(create_udf(
        "pg_backend_pid",
        vec![],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::Int32(Some(pid)),
            ))
        }),
    ));
    for name in ["pg_cancel_backend", "pg_terminate_backend"] {
        let (cancels, user) = (cancels.clone(), user.clone());
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Volatile,
            Arc::new(move |args: &[ColumnarValue]| {
                let pids = ColumnarValue::values_to_arrays(args)?;
                let pids = datafusion::arrow::compute::cast(&pids[0], &DataType::Int64)?;
                let pids = pids.as_primitive::<Int64Type>();
                let answers: BooleanArray = (0..pids.len())
                    .map(|i| {
                        pids.is_valid(i).then(|| {
                            i32::try_from(pids.value(i))
                                .is_ok_and(|target| cancels.signal(target, &user))
                        })
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(answers)))
            }),
        ));
    }
}

/// A statement ready to plan, and the key of its answer in the result cache (none
/// when the cache is off): [`Service::keyed`].
struct Keyed {
    statement: Statement,
    key: Option<(Arc<crate::cache::ResultCache>, crate::cache::Key)>,
}

/// The statement with the relations that depend on the connection in place:
/// `pg_stat_activity` lists the caller's user's connections (`compat::stat_activity`).
fn with_session_relations<C: ClientInfo + ?Sized>(client: &C, statement: &Statement) -> Statement {
    let mut statement = statement.clone();
    if let Some(slot) = client.session_extensions().get::<CancelSlot>() {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let cancels = slot.cancels();
        crate::compat::stat_activity(&mut statement, move || cancels.of_user(&user));
    }
    statement
}

/// Marks the connection busy (not idle) while the guard lives.
fn busy<C: ClientInfo + ?Sized>(client: &C) -> Option<Busy> {
    client
        .session_extensions()
        .get::<Arc<Life>>()
        .map(|life| life.busy())
}

/// What stops a statement besides its deadline: the client's cancel request, and the
/// client hanging up.
struct Stops {
    cancel: Option<watch::Receiver<u64>>,
    gone: Option<watch::Receiver<bool>>,
    /// Fired when the memory ceiling picks this statement (with the ceiling in bytes,
    /// and the registration that keeps it a candidate while the stops live).
    evicted: Option<(watch::Receiver<bool>, usize, Registration)>,
}

impl Stops {
    fn of<C: ClientInfo + ?Sized>(client: &C) -> Stops {
        Stops {
            cancel: client
                .session_extensions()
                .get::<CancelSlot>()
                .map(|slot| slot.subscribe()),
            gone: client
                .session_extensions()
                .get::<Arc<Life>>()
                .map(|life| life.gone.clone()),
            evicted: None,
        }
    }

    /// Resolves, with the error to answer, when the client cancels or hangs up.
    async fn fired(&mut self) -> PgWireError {
        let Stops {
            cancel,
            gone,
            evicted,
        } = self;
        let cancelled = async {
            // An error means the connection is gone: nothing to cancel for.
            if let Some(rx) = cancel
                && rx.changed().await.is_ok()
            {
                return;
            }
            futures::future::pending::<()>().await
        };
        let hung_up = async {
            if let Some(rx) = gone
                && rx.wait_for(|g| *g).await.is_ok()
            {
                return;
            }
            futures::future::pending::<()>().await
        };
        let mut ceiling = 0;
        let over_ceiling = async {
            if let Some((rx, limit, _)) = evicted {
                ceiling = *limit;
                if rx.wait_for(|e| *e).await.is_ok() {
                    return;
                }
            }
            futures::future::pending::<()>().await
        };
        tokio::select! {
            _ = cancelled => server_error("57014", "canceling statement due to user request".into()),
            _ = over_ceiling => server_error(
                "53200",
                format!(
                    "out of memory: the server's resident memory passed its ceiling of {} MiB \
                     (--memory-ceiling) and this was the largest statement running; it was \
                     cancelled so that the server and the other sessions go on",
                    ceiling >> 20
                ),
            ),
            _ = hung_up => {
                tracing::info!("statement stopped: the client disconnected");
                server_error("08006", "the client disconnected; statement stopped".into())
            }
        }
    }
}

/// Runs a statement's engine work (planning, optimizing, starting the execution) on
/// a blocking thread, and waits for it until the deadline, a cancel request or the
/// client hanging up. Planning is synchronous code that a timeout on the worker
/// running it could not interrupt; here the client is answered on time whatever the
/// planner does, and the work is told to stop (it does at its next await point).
/// A panic in the work becomes SQLSTATE XX000.
async fn off_thread<T, F>(
    work: F,
    deadline: (Instant, Duration),
    stops: &mut Stops,
) -> PgWireResult<T>
where
    F: Future<Output = PgWireResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            tokio::select! {
                done = work => Some(done),
                _ = stopped => None,
            }
        })
    });
    let joined = tokio::select! {
        joined = task => joined,
        _ = tokio::time::sleep_until(deadline.0) => return Err(timed_out(deadline.1)),
        e = stops.fired() => return Err(e),
    };
    drop(stop);
    match joined {
        Ok(Some(result)) => result,
        Ok(None) => Err(server_error("57014", "canceling statement".into())),
        Err(e) if e.is_panic() => Err(panicked(e.into_panic())),
        Err(e) => Err(server_error(
            "XX000",
            format!("the statement's task failed: {e}"),
        )),
    }
}

/// A caught panic as the client's error.
fn panicked(payload: Box<dyn Any + Send>) -> PgWireError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    tracing::error!(panic = %what, "a statement panicked; the connection goes on");
    server_error(
        "XX000",
        format!(
            "internal error while running the statement ({what}); the connection remains usable"
        ),
    )
}

/// Runs a handler's body, answering a panic in it with XX000 instead of losing the
/// connection.
async fn unpanicked<T>(body: impl Future<Output = PgWireResult<T>>) -> PgWireResult<T> {
    match AssertUnwindSafe(body).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(panicked(payload)),
    }
}

/// Resets the session settings `RESET` names (or all of them).
fn reset<C: ClientInfo + ?Sized>(client: &mut C, statement: &Statement) -> Response {
    let names: Vec<String> = match statement {
        Statement::Reset(r) => match &r.reset {
            Reset::ALL => policy::SESSION_SETTINGS
                .iter()
                .filter(|n| **n != "application_name")
                .map(|n| n.to_string())
                .chain(["timezone".to_string()])
                .collect(),
            Reset::ConfigurationParameter(name) => vec![policy::setting_name(name)],
        },
        _ => vec![],
    };
    let metadata = client.metadata_mut();
    for name in names {
        match name.as_str() {
            "statement_timeout" => metadata.remove(CLIENT_TIMEOUT_KEY),
            other => metadata.remove(other),
        };
    }
    Response::Execution(Tag::new("RESET"))
}

/// What datafusion-postgres's hooks answer, as PostgreSQL answers it:
/// - `FETCH` completes with the tag `FETCH n`, not `SELECT n` (psqlODBC's
///   declare/fetch mode keeps only a result tagged `FETCH` and drops the rows
///   otherwise);
/// - a statement in a failed transaction is SQLSTATE 25P02 ("in failed SQL
///   transaction"), not 25P01 ("no active SQL transaction").
fn as_postgresql_answers(
    statement: &Statement,
    result: PgWireResult<Response>,
) -> PgWireResult<Response> {
    match result {
        Ok(Response::Query(mut q)) if matches!(statement, Statement::Fetch { .. }) => {
            q.set_command_tag("FETCH");
            Ok(Response::Query(q))
        }
        Err(PgWireError::UserError(mut info)) if info.code == "25P01" => {
            info.code = "25P02".to_string();
            Err(PgWireError::UserError(info))
        }
        other => other,
    }
}

/// `DEALLOCATE` and `DISCARD`, which act on the connection's own state.
fn session_statement<C>(
    client: &mut C,
    statement: &Statement,
    verdict: Verdict,
) -> Option<PgWireResult<Response>>
where
    C: ClientInfo + ClientPortalStore + ?Sized,
    C::PortalStore: PortalStore,
{
    match (verdict, statement) {
        (Verdict::Deallocate, Statement::Deallocate { name, .. }) => {
            if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("ALL") {
                // pgwire cannot list a connection's statements; they go with it.
                return Some(Ok(Response::Execution(Tag::new("DEALLOCATE ALL"))));
            }
            let store = client.portal_store();
            if store.get_statement(&name.value).is_none() {
                return Some(Err(server_error(
                    "26000",
                    format!("prepared statement \"{}\" does not exist", name.value),
                )));
            }
            store.rm_statement(&name.value);
            Some(Ok(Response::Execution(Tag::new("DEALLOCATE"))))
        }
        (Verdict::Discard, Statement::Discard { object_type }) => {
            let tag = format!("DISCARD {object_type}");
            if tag == "DISCARD ALL" {
                let all = Statement::Reset(datafusion::sql::sqlparser::ast::ResetStatement {
                    reset: Reset::ALL,
                });
                reset(client, &all);
                client.portal_store().clear_portals();
            }
            Some(Ok(Response::Execution(Tag::new(&tag))))
        }
        _ => None,
    }
}

async fn plan_read_only(ctx: &SessionContext, statement: &Statement) -> PgWireResult<LogicalPlan> {
    let plan = ctx
        .state()
        .statement_to_plan(DfStatementWrapper::Statement(Box::new(statement.clone())))
        .await
        .map_err(engine_error)?;
    townstat_query::session::read_only()
        .verify_plan(&plan)
        .map_err(|e| {
            server_error(
                policy::READ_ONLY,
                format!("townstat serve is read-only: {e}"),
            )
        })?;
    Ok(plan)
}

/// The rows of a result as PostgreSQL data rows in the client's format (what
/// arrow-pg's `encode_dataframe` does, for any stream of batches: an execution, or
/// the answer the result cache kept).
fn encode_rows<S>(
    schema: &Schema,
    batches: S,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<QueryResponse>
where
    S: futures::Stream<
            Item = datafusion::error::Result<datafusion::arrow::record_batch::RecordBatch>,
        > + Send
        + 'static,
{
    let fields = Arc::new(arrow_schema_to_pg_fields(schema, format, Some(options))?);
    let fields_ref = fields.clone();
    let rows = batches
        .map(move |batch| {
            let rows: Box<
                dyn Iterator<Item = PgWireResult<pgwire::messages::data::DataRow>> + Send + Sync,
            > = match batch {
                Ok(batch) => Box::new(
                    datafusion_postgres::arrow_pg::datatypes::encode_recordbatch(
                        fields_ref.clone(),
                        batch,
                    ),
                ),
                Err(e) => Box::new(std::iter::once(Err(PgWireError::ApiError(e.into())))),
            };
            futures::stream::iter(rows)
        })
        .flatten();
    Ok(QueryResponse::new(fields, rows))
}

/// The answer to a statement acknowledged without the engine, if it is one.
fn acknowledgement(verdict: Verdict) -> Option<Response> {
    match verdict {
        Verdict::IgnoredSetting => Some(Response::Execution(Tag::new("SET"))),
        Verdict::Acknowledge(tag) => Some(Response::Execution(Tag::new(tag))),
        // TransactionStart moves pgwire's status from "failed" back to "in transaction".
        Verdict::RollbackToSavepoint => Some(Response::TransactionStart(Tag::new("ROLLBACK"))),
        Verdict::Run
        | Verdict::SessionSetting
        | Verdict::Reset
        | Verdict::Deallocate
        | Verdict::Discard => None,
    }
}

/// The plan of a statement that changes nothing: no columns, one empty row.
fn empty_plan() -> PgWireResult<LogicalPlan> {
    let schema = DFSchema::try_from(Schema::empty()).map_err(engine_error)?;
    Ok(LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: true,
        schema: Arc::new(schema),
    }))
}

#[async_trait]
impl SimpleQueryHandler for Service {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = busy(client);
        unpanicked(self.simple_query(client, query)).await
    }
}

impl Service {
    async fn simple_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = self.parser.parse(client, query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        // Every statement is checked before any runs: `SELECT 1; DROP TABLE t` runs
        // nothing.
        let mut verdicts = Vec::with_capacity(statements.len());
        for statement in &statements {
            match policy::check(statement) {
                Ok(v) => verdicts.push(v),
                Err(refusal) => {
                    Self::log_refusal(client, query, &refusal);
                    return Err(server_error(refusal.code, refusal.message));
                }
            }
        }
        let pinned = self.source.current().await?;
        tracing::debug!(run_id = %pinned.run_id, statements = statements.len(), "simple query");
        let mut responses = Vec::with_capacity(statements.len());
        'statements: for (statement, verdict) in statements.iter().zip(verdicts) {
            if verdict == Verdict::Reset {
                responses.push(reset(client, statement));
                continue;
            }
            if let Some(response) = session_statement(client, statement, verdict) {
                responses.push(response?);
                continue;
            }
            if let Some(response) = acknowledgement(verdict) {
                responses.push(response);
                continue;
            }
            let deadline = self.deadline(client);
            let keyed = self.keyed(client, statement, None);
            let format = Format::UnifiedText;
            if let Some(response) = self.cached(client, &pinned.run_id, &keyed, &format, deadline) {
                responses.push(response?);
                continue;
            }
            let ctx = self.statement_context(client, &pinned, statement)?;
            for hook in &self.hooks {
                if let Some(result) = hook.handle_simple_query(statement, &ctx, client).await {
                    responses.push(as_postgresql_answers(statement, result)?);
                    continue 'statements;
                }
            }
            responses.push(
                self.execute(
                    client,
                    (&pinned.run_id, &ctx),
                    keyed,
                    None,
                    &format,
                    deadline,
                )
                .await?,
            );
        }
        Ok(responses)
    }
}

/// Parses and plans statements of the extended protocol (`Parse` messages).
pub(crate) struct Parser {
    source: Arc<Source>,
    limits: Limits,
    sql: PostgresCompatibilityParser,
    /// datafusion-pg-catalog's rewrite rules minus `RemoveSubqueryFromProjection`,
    /// in its order: for statements that read warehouse tables.
    data_rules: Vec<Box<dyn SqlStatementRewriteRule>>,
    hooks: Vec<Arc<dyn QueryHook>>,
    /// Plans of prepared statements on the current run (`cache::PlanCache`).
    plans: crate::cache::PlanCache,
    /// What each text sent parsed into (`cache::ParseCache`).
    parsed: crate::cache::ParseCache,
}

/// Whether a statement reads only the catalog (`pg_catalog.*`, `information_schema.*`,
/// or an unqualified `pg_*` name, which the catalog resolves), or no table at all.
fn reads_only_catalog(statement: &Statement) -> bool {
    let mut only = true;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(statement, |name| {
        let n = name.to_string().to_lowercase().replace('"', "");
        let catalog = n.starts_with("pg_catalog.")
            || n.starts_with("information_schema.")
            || (!n.contains('.') && n.starts_with("pg_"));
        if !catalog {
            only = false;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    only
}

impl Parser {
    /// datafusion-pg-catalog's parser rewrites client SQL so that DataFusion can plan
    /// it. One of its rules, `RemoveSubqueryFromProjection`, replaces every
    /// correlated scalar subquery in a SELECT list (and any with a `$n` parameter) by
    /// NULL: harmless for a BI tool's catalog browsing, a silently wrong number for
    /// `SELECT t.town_id, (SELECT count(*) FROM enterprise e WHERE e.town_id =
    /// t.town_id) FROM town t`. Statements that read warehouse tables are therefore
    /// parsed without that rule; they get DataFusion's answer or its error, never a
    /// NULL in place of a figure. Catalog-only statements keep every rule, and the
    /// parser's substitutions for known client queries.
    fn faithful_parse(
        &self,
        sql: &str,
    ) -> Result<Vec<Statement>, datafusion::sql::sqlparser::parser::ParserError> {
        // Decided on the statements as written: the rules themselves remove tables.
        let plain = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        );
        match plain {
            Ok(plain) if !plain.iter().all(reads_only_catalog) => Ok(plain
                .into_iter()
                .map(|statement| {
                    self.data_rules
                        .iter()
                        .fold(statement, |s, rule| rule.rewrite(s))
                })
                .collect()),
            Ok(mut plain) => {
                let mut changed = false;
                for statement in &mut plain {
                    changed |= crate::compat::qualify_catalog_regclass(statement);
                }
                let mut parsed = if changed {
                    let text: Vec<String> = plain.iter().map(ToString::to_string).collect();
                    self.sql.parse(&text.join(";\n"))
                } else {
                    self.sql.parse(sql)
                }?;
                // After datafusion-pg-catalog's substitutions, which match the texts
                // of known client queries as written.
                for statement in &mut parsed {
                    crate::compat::fix_catalog_statement(statement);
                }
                Ok(parsed)
            }
            // Client queries only the parser's substitutions make parseable.
            Err(_) => self.sql.parse(sql),
        }
    }

    /// Parses SQL text ([`Parser::faithful_parse`]); a write the parser cannot read is
    /// refused as a write. A statement the catalog compatibility rewrites (`compat`)
    /// changed is parsed again from its new text, so that datafusion-pg-catalog's rules
    /// see the final form.
    ///
    /// The text's size and nesting are checked first ([`complexity::check`]): what
    /// comes after recurses over the tree. Every statement comes out with its
    /// `SET`/`RESET`/`SHOW` names normalized ([`policy::normalize`]). A text parsed
    /// before is not parsed again (`cache::ParseCache`).
    fn parse<C: ClientInfo + ?Sized>(&self, client: &C, sql: &str) -> PgWireResult<Vec<Statement>> {
        if let Some(statements) = self.parsed.get(sql) {
            return Ok(statements);
        }
        if let Err(complexity::TooComplex(message)) = complexity::check(sql) {
            let refusal = policy::Refusal {
                code: complexity::TOO_COMPLEX,
                message,
            };
            Service::log_refusal(client, sql, &refusal);
            return Err(server_error(refusal.code, refusal.message));
        }
        let statements =
            self.faithful_parse(sql)
                .map_err(|e| match policy::check_unparsed(sql) {
                    Some(refusal) => {
                        Service::log_refusal(client, sql, &refusal);
                        server_error(refusal.code, refusal.message)
                    }
                    None => parse_error(e),
                })?;
        let mut out = Vec::with_capacity(statements.len());
        for mut statement in statements {
            if crate::compat::rewrite(&mut statement) {
                let again = self
                    .faithful_parse(&statement.to_string())
                    .map_err(parse_error)?;
                out.extend(again);
            } else {
                out.push(statement);
            }
        }
        for statement in &mut out {
            policy::normalize(statement);
        }
        self.parsed.put(sql, &out);
        Ok(out)
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let _busy = busy(client);
        unpanicked(self.parse_and_plan(client, sql)).await
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        match stmt {
            (_, Some((_, plan))) => Ok(parameters(plan)?.1),
            _ => Ok(vec![]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match stmt {
            (_, Some((_, plan))) if !matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)) => {
                arrow_schema_to_pg_fields(
                    plan.schema().as_arrow(),
                    column_format.unwrap_or(&Format::UnifiedText),
                    None,
                )
            }
            _ => Ok(vec![]),
        }
    }
}

impl Parser {
    /// A `Parse` message: parsed, checked, and planned (off the workers, within the
    /// statement deadline) to tell the client the parameter and result types.
    async fn parse_and_plan<C>(&self, client: &C, sql: &str) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = self.parse(client, sql)?;
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(server_error(
                "42601",
                "cannot insert multiple commands into a prepared statement".into(),
            ));
        }
        let statement = statements.remove(0);
        let verdict = match policy::check(&statement) {
            Ok(v) => v,
            Err(refusal) => {
                Service::log_refusal(client, sql, &refusal);
                return Err(server_error(refusal.code, refusal.message));
            }
        };
        let text = statement.to_string();
        if acknowledgement(verdict).is_some()
            || matches!(verdict, Verdict::Deallocate | Verdict::Discard)
        {
            return Ok(Some((text, Some((statement, empty_plan()?)))));
        }
        let pinned = self.source.current().await?;
        for hook in &self.hooks {
            if let Some(plan) = hook
                .handle_extended_parse_query(&statement, &pinned.ctx, client)
                .await
            {
                return Ok(Some((text, Some((statement, plan?)))));
            }
        }
        if let Some(plan) = self.plans.get(&pinned.run_id, &text) {
            return Ok(Some((text, Some((statement, plan)))));
        }
        let ctx = SessionContext::new_with_state(pinned.ctx.state());
        session_functions(client, &ctx);
        let to_plan = with_session_relations(client, &statement);
        let plan = off_thread(
            async move { plan_read_only(&ctx, &to_plan).await },
            deadline(&self.limits, client),
            &mut Stops::of(client),
        )
        .await?;
        self.plans.put(&pinned.run_id, text.clone(), &plan);
        Ok(Some((text, Some((statement, plan)))))
    }
}

/// A plan's parameters in `$1, $2, …` order: their Arrow types (when inferred) and
/// the PostgreSQL types announced to the client.
fn parameters(plan: &LogicalPlan) -> PgWireResult<(Vec<Option<DataType>>, Vec<Type>)> {
    let mut params: Vec<(String, Option<DataType>)> = plan
        .get_parameter_types()
        .map_err(engine_error)?
        .into_iter()
        .collect();
    params.sort_by_key(|(id, _)| {
        id.trim_start_matches('$')
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    let mut wire = Vec::with_capacity(params.len());
    for (_, dt) in &params {
        wire.push(match dt {
            Some(dt) => into_pg_type(dt)?,
            None => Type::UNKNOWN,
        });
    }
    Ok((params.into_iter().map(|(_, dt)| dt).collect(), wire))
}

fn parameter_values(portal: &Portal<Prepared>, plan: &LogicalPlan) -> PgWireResult<ParamValues> {
    let (types, wire) = parameters(plan)?;
    let types: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
    let wire: Vec<Option<&Type>> = wire.iter().map(Some).collect();
    df::deserialize_parameters_with_server_types(portal, &types, &wire)
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = busy(client);
        unpanicked(self.extended_query(client, portal)).await
    }
}

impl Service {
    async fn extended_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (_, Some((statement, parsed_plan))) = &portal.statement.statement else {
            return Ok(Response::EmptyQuery);
        };
        // Checked at Parse already; checked again because a portal is what runs.
        let verdict = policy::check(statement).map_err(|r| server_error(r.code, r.message))?;
        if verdict == Verdict::Reset {
            return Ok(reset(client, statement));
        }
        if let Some(response) = session_statement(client, statement, verdict) {
            return response;
        }
        if let Some(response) = acknowledgement(verdict) {
            return Ok(response);
        }
        let deadline = self.deadline(client);
        let pinned = self.source.current().await?;
        let params = parameter_values(portal, parsed_plan)?;
        let keyed = self.keyed(client, statement, Some(&params));
        let format = &portal.result_column_format;
        if let Some(response) = self.cached(client, &pinned.run_id, &keyed, format, deadline) {
            return response;
        }
        let ctx = self.statement_context(client, &pinned, statement)?;
        for hook in &self.hooks {
            if let Some(result) = hook
                .handle_extended_query(statement, parsed_plan, &params, &ctx, client)
                .await
            {
                return as_postgresql_answers(statement, result);
            }
        }
        // Planned again on the current run: a statement prepared before a nightly run
        // reads the new run when executed after it.
        self.execute(
            client,
            (&pinned.run_id, &ctx),
            keyed,
            Some(params),
            format,
            deadline,
        )
        .await
    }
}

/// Ends a result's row stream with SQLSTATE 57014 when the deadline passes or the
/// client cancels, with 08006 when the client hangs up, and with XX000 when producing
/// a row panics; dropping the inner stream stops the execution behind it. The
/// connection counts as busy until the stream ends.
fn bounded(
    response: QueryResponse,
    deadline: (Instant, Duration),
    stops: Stops,
    busy: Option<Busy>,
) -> QueryResponse {
    type Rows =
        futures::stream::CatchUnwind<AssertUnwindSafe<pgwire::api::results::SendableRowStream>>;
    struct State {
        rows: Rows,
        sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
        stops: Stops,
        limit: Duration,
        done: bool,
        _busy: Option<Busy>,
    }
    let QueryResponse {
        command_tag,
        row_schema,
        data_rows,
        ..
    } = response;
    let state = State {
        rows: AssertUnwindSafe(data_rows).catch_unwind(),
        sleep: Box::pin(tokio::time::sleep_until(deadline.0)),
        stops,
        limit: deadline.1,
        done: false,
        _busy: busy,
    };
    let rows = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let State {
            rows,
            sleep,
            stops,
            limit,
            ..
        } = &mut st;
        let next = tokio::select! {
            biased;
            e = stops.fired() => Some(Err(e)),
            _ = sleep => Some(Err(timed_out(*limit))),
            row = rows.next() => match row {
                Some(Ok(row)) => Some(row.map_err(stream_error)),
                Some(Err(payload)) => Some(Err(panicked(payload))),
                None => None,
            },
        };
        match next {
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            Some(ok) => Some((ok, st)),
            None => None,
        }
    });
    let mut out = QueryResponse::new(row_schema, rows);
    out.command_tag = command_tag;
    out
}

fn server_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

fn timed_out(limit: Duration) -> PgWireError {
    server_error(
        "57014",
        format!(
            "canceling statement due to statement timeout ({} ms)",
            limit.as_millis()
        ),
    )
}

/// A parser error: 54001 when the parser's recursion limit stopped it (parentheses
/// or subqueries nested too deep), 42601 otherwise.
fn parse_error(e: datafusion::sql::sqlparser::parser::ParserError) -> PgWireError {
    match e {
        datafusion::sql::sqlparser::parser::ParserError::RecursionLimitExceeded => server_error(
            complexity::TOO_COMPLEX,
            "statement too complex: parentheses or subqueries nest too deep".into(),
        ),
        other => server_error("42601", other.to_string()),
    }
}

/// An error raised while rows stream: arrow-pg wraps DataFusion's error opaquely;
/// unwrap it to give the client its PostgreSQL class (53200 for memory, say).
fn stream_error(e: PgWireError) -> PgWireError {
    match e {
        PgWireError::ApiError(inner) => match inner.downcast::<DataFusionError>() {
            Ok(df) => engine_error(*df),
            Err(other) => PgWireError::ApiError(other),
        },
        other => other,
    }
}

/// DataFusion's errors as PostgreSQL error classes.
fn engine_error(e: DataFusionError) -> PgWireError {
    let code = match e.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::Plan(m) if m.contains("not found") => "42P01",
        DataFusionError::SchemaError(..) => "42703",
        DataFusionError::Plan(_) => "42000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::NotImplemented(_) => "0A000",
        _ => "XX000",
    };
    server_error(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_stops() -> Stops {
        Stops {
            cancel: None,
            gone: None,
            evicted: None,
        }
    }

    fn code(e: &PgWireError) -> (String, String) {
        match e {
            PgWireError::UserError(info) => (info.code.clone(), info.message.clone()),
            other => (String::new(), other.to_string()),
        }
    }

    fn soon(limit: Duration) -> (Instant, Duration) {
        (Instant::now() + limit, limit)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_while_planning_is_an_error() {
        let e = off_thread::<(), _>(
            async { panic!("partition not used yet") },
            soon(Duration::from_secs(5)),
            &mut no_stops(),
        )
        .await
        .unwrap_err();
        let (code, message) = code(&e);
        assert_eq!(code, "XX000");
        assert!(message.contains("partition not used yet"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn planning_that_never_yields_does_not_escape_the_deadline() {
        // Synchronous work, as the planner's: a timeout on the task running it could
        // not interrupt it.
        let started = std::time::Instant::now();
        let e = off_thread(
            async {
                std::thread::sleep(Duration::from_secs(3));
                Ok(())
            },
            soon(Duration::from_millis(200)),
            &mut no_stops(),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e).0, "57014");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hang_up_stops_the_statement() {
        let (gone, rx) = watch::channel(false);
        let mut stops = Stops {
            cancel: None,
            gone: Some(rx),
            evicted: None,
        };
        let hang_up = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            gone.send_replace(true);
            gone
        });
        let e = off_thread(
            futures::future::pending::<PgWireResult<()>>(),
            soon(Duration::from_secs(10)),
            &mut stops,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e).0, "08006");
        drop(hang_up.await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_while_rows_stream_is_an_error() {
        let rows = futures::stream::once(async {
            panic!("partition not used yet");
        });
        let response = QueryResponse::new(Arc::new(vec![]), rows);
        let bounded = bounded(response, soon(Duration::from_secs(5)), no_stops(), None);
        let items: Vec<_> = bounded.data_rows.collect().await;
        assert_eq!(items.len(), 1);
        let e = items.into_iter().next().unwrap().unwrap_err();
        let (code, message) = code(&e);
        assert_eq!(code, "XX000");
        assert!(message.contains("partition not used yet"), "{message}");
    }
}
