//! townstat on an Apache DataFusion Ballista 55 cluster.
//!
//! - [`run_scheduler`] and [`run_executor`] are the `townstat scheduler` and `townstat
//!   executor` processes: Ballista's own scheduler and executor, embedded with what the
//!   warehouse's plans need — the object stores (`s3://` from the environment, local
//!   files), townstat's SQL functions, and a memory pool per executor.
//! - [`remote_context`] is a client session whose queries run on the cluster
//!   (`--cluster df://HOST:PORT` on `sql`, `run` and `serve`).
//!
//! What crosses the wire is the logical plan. Ballista can serialize Parquet listing
//! tables and views but not Delta's own table provider or in-memory tables, so on a
//! cluster the warehouse registers each pinned Delta version as a listing table over
//! exactly the Parquet files that version references (see
//! `Warehouse::register_files`), and the mart build writes each step's result to
//! Parquet in the warehouse's store (`_scratch/`) instead of memory. Every process
//! that plans or executes needs the store: the client, the scheduler and the executors
//! all build theirs from the same environment variables.
//!
//! Scheduling is pull-based: executors poll the scheduler for tasks, which doubles as
//! their heartbeat (at least every 5 s), so a dead executor is noticed within
//! `executor_timeout` and its tasks are re-run on the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::RuntimeProducer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::{
    ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::SessionBuilder;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::common::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use url::Url;

/// Errors of the cluster processes and sessions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Ballista error.
    #[error("ballista: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    /// A DataFusion error.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// A bad setting.
    #[error("{0}")]
    Config(String),
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Object stores by `scheme://host`, made when first asked for: `s3://BUCKET` from the
/// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...), as
/// object_store reads it; `file://` is the local file system.
#[derive(Debug)]
pub struct Stores {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    local: Arc<dyn ObjectStore>,
}

fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
}

impl ObjectStoreRegistry for Stores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .ok()
            .and_then(|mut s| s.insert(store_key(url), store))
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        if let Some(s) = self.stores.read().ok().and_then(|s| s.get(&key).cloned()) {
            return Ok(s);
        }
        match url.scheme() {
            "file" => Ok(self.local.clone()),
            "s3" | "s3a" => {
                let bucket = url.host_str().unwrap_or_default();
                let store: Arc<dyn ObjectStore> = Arc::new(
                    object_store::aws::AmazonS3Builder::from_env()
                        .with_bucket_name(bucket)
                        .build()?,
                );
                if let Ok(mut s) = self.stores.write() {
                    s.insert(key, store.clone());
                }
                Ok(store)
            }
            other => Err(DataFusionError::Configuration(format!(
                "no object store for {other}:// (townstat reads file:// and s3://)"
            ))),
        }
    }
}

/// The object-store registry every townstat process of a cluster uses.
pub fn stores() -> Arc<dyn ObjectStoreRegistry> {
    Arc::new(Stores {
        stores: RwLock::new(HashMap::new()),
        local: Arc::new(object_store::local::LocalFileSystem::new()),
    })
}

fn udfs() -> Vec<Arc<datafusion::logical_expr::ScalarUDF>> {
    townstat_query::udf::udfs()
        .into_iter()
        .map(Arc::new)
        .collect()
}

fn udafs() -> Vec<Arc<datafusion::logical_expr::AggregateUDF>> {
    townstat_query::udf::udafs()
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// Ballista's session settings with one change: adaptive query planning is off. With
/// it on (Ballista 55's default), the scheduler spun at full CPU on the mart build's
/// `int_group_year` step and never finished ("there are stages to be cancelled but
/// its not implemented"); the static distributed planner runs it in seconds.
fn ballista_config() -> SessionConfig {
    SessionConfig::new_with_ballista().set_str(
        ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED,
        "false",
    )
}

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where it listens for clients and executors.
    pub listen: SocketAddr,
    /// How long an executor may go without a heartbeat before it is taken as lost and
    /// its tasks are run elsewhere.
    pub executor_timeout: Duration,
}

/// Runs a scheduler until the process is stopped.
pub async fn run_scheduler(opts: SchedulerOptions) -> Result<()> {
    let runtime: Arc<RuntimeEnv> = RuntimeEnvBuilder::new()
        .with_object_store_registry(stores())
        .build_arc()?;
    // Called once per submitted job: the runtime (and its stores) is shared.
    let session_builder: SessionBuilder = Arc::new(move |config: SessionConfig| {
        let mut scalars = ballista_scalar_functions();
        scalars.extend(udfs());
        Ok(SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime.clone())
            .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
            .with_scalar_functions(scalars)
            .with_aggregate_functions(
                ballista_aggregate_functions()
                    .into_iter()
                    .chain(udafs())
                    .collect(),
            )
            .with_window_functions(ballista_window_functions())
            .build())
    });
    let timeout = opts.executor_timeout.as_secs().max(1);
    let config = SchedulerConfig {
        bind_host: opts.listen.ip().to_string(),
        external_host: opts.listen.ip().to_string(),
        bind_port: opts.listen.port(),
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        executor_timeout_seconds: timeout,
        expire_dead_executor_interval_seconds: (timeout / 5).clamp(1, 15),
        no_executors_grace_period_seconds: timeout,
        override_logical_codec: Some(Arc::new(BallistaLogicalExtensionCodec::default())),
        override_physical_codec: Some(Arc::new(BallistaPhysicalExtensionCodec::default())),
        ..Default::default()
    }
    .with_override_config_producer(Arc::new(ballista_config))
    .with_override_session_builder(session_builder);
    let cluster = BallistaCluster::new_from_config(&config).await?;
    eprintln!("townstat scheduler: listening on {}", opts.listen);
    start_server(cluster, opts.listen, Arc::new(config)).await?;
    Ok(())
}

/// An executor's settings.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler.
    pub scheduler: SocketAddr,
    /// The host and port its Arrow Flight service (shuffle reads, results) listens on.
    pub listen: SocketAddr,
    /// Shuffle files and spills.
    pub work_dir: String,
    /// Tasks at once (0: one per core).
    pub tasks: usize,
    /// The executor's memory pool, shared by its running tasks; beyond it, operators
    /// that can spill write to `work_dir`.
    pub memory: u64,
}

/// Runs an executor until the process is stopped or the scheduler stops it.
pub async fn run_executor(opts: ExecutorOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(|e| Error::Config(format!("{}: {e}", opts.work_dir)))?;
    let registry = stores();
    let work_dir = opts.work_dir.clone();
    let runtime_producer: RuntimeProducer = Arc::new(move |_config: &SessionConfig| {
        RuntimeEnvBuilder::new()
            .with_temp_file_path(work_dir.clone())
            .with_object_store_registry(registry.clone())
            .build_arc()
    });
    // Ballista's default executor registry lacks DataFusion's nested functions
    // (`array_to_string`, `array_agg`'s helpers...), which its scheduler has: the
    // executor gets the scheduler's list plus townstat's functions.
    let mut functions = BallistaFunctionRegistry::default();
    for f in ballista_scalar_functions().into_iter().chain(udfs()) {
        for alias in f.aliases() {
            functions.scalar_functions.insert(alias.clone(), f.clone());
        }
        functions.scalar_functions.insert(f.name().to_string(), f);
    }
    for f in udafs() {
        functions
            .aggregate_functions
            .insert(f.name().to_string(), f);
    }
    let host = opts.listen.ip().to_string();
    let config = ExecutorProcessConfig {
        bind_host: host.clone(),
        external_host: Some(host),
        port: opts.listen.port(),
        // Only used with push scheduling; kept off the Flight port.
        grpc_port: opts.listen.port().wrapping_add(1),
        scheduler_host: opts.scheduler.ip().to_string(),
        scheduler_port: opts.scheduler.port(),
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.tasks,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: Some(opts.work_dir.clone()),
        memory_pool_size: Some(opts.memory),
        override_runtime_producer: Some(runtime_producer),
        override_config_producer: Some(Arc::new(ballista_config)),
        override_function_registry: Some(Arc::new(functions)),
        override_logical_codec: Some(Arc::new(BallistaLogicalExtensionCodec::default())),
        override_physical_codec: Some(Arc::new(BallistaPhysicalExtensionCodec::default())),
        ..Default::default()
    };
    eprintln!(
        "townstat executor: flight on {}, scheduler {}, {} MiB",
        opts.listen,
        opts.scheduler,
        opts.memory >> 20
    );
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// Whether a `--cluster` value is a scheduler URL (`df://HOST:PORT`).
pub fn check_url(url: &str) -> Result<()> {
    match url.strip_prefix("df://") {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(Error::Config(format!(
            "--cluster {url}: expected df://HOST:PORT (the scheduler)"
        ))),
    }
}

/// Partitions per shuffle on the cluster: `TOWNSTAT_CLUSTER_PARTITIONS`, default 4.
/// Every partition of every stage is a task the scheduler hands out, and each task
/// costs tens of milliseconds of scheduling whatever its size; Ballista's default of
/// 16 made the mart rebuild at scale 10 spend most of its time handing out tasks
/// (docs/scaling.md). Set it to about the cluster's task slots (executors × --tasks).
pub fn partitions() -> usize {
    std::env::var("TOWNSTAT_CLUSTER_PARTITIONS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4)
}

/// A session whose queries run on the cluster at `url` (`df://HOST:PORT`), with
/// townstat's settings (catalog, information_schema, functions) and the object stores
/// the warehouse tables need.
pub async fn remote_context(url: &str) -> Result<SessionContext> {
    check_url(url)?;
    let limit = townstat_query::session::memory_limit();
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(stores())
        .with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(limit),
        ))
        .build_arc()?;
    let config = ballista_config()
        .with_target_partitions(partitions())
        .with_information_schema(true)
        .with_default_catalog_and_schema("townstat", "public")
        .with_ballista_job_name("townstat");
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .build();
    let ctx = SessionContext::remote_with_state(url, state).await?;
    // After the upgrade to a Ballista session, which replaces the function lists.
    townstat_query::udf::register(&ctx);
    Ok(ctx)
}
