//! The listener: TLS that either works or stops the server, two connection pools, a
//! fresh startup handler per connection, and a watch on each connection's life.
//!
//! - **Two pools.** A connection first takes a slot of the unauthenticated pool
//!   (`--max-unauthenticated`; when it is full the socket is closed at once), and
//!   gives it back once it has authenticated and holds a session slot
//!   (`--max-connections`, SQLSTATE 53300 beyond, `auth.rs`). A connection that has
//!   not authenticated within `--auth-timeout` is closed: silent sockets cannot lock
//!   clients out for longer than that.
//! - **Idle sessions** with no statement running for `--idle-session-timeout` are
//!   closed.
//! - **The client's socket is watched** through a second descriptor of it: when the
//!   client hangs up while a statement runs (pgwire reads nothing until the statement
//!   ends), the statement is stopped (`service.rs`).
//! - **Accept errors** (out of file descriptors, say) make the loop sleep, 100 ms
//!   doubling to 2 s, and are logged once per 10 s, instead of spinning.
//! - **SIGTERM and SIGINT** stop the accepting, close every connection (which drops
//!   its running statement and stops its tasks), and return within a few seconds.

use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion_postgres::pgwire;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use pgwire::tokio::process_socket;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use townstat_warehouse::Warehouse;

use crate::auth::{Canceller, Cancels, Credentials, Failures, Gatekeeping, Startup};
use crate::config::{ServeConfig, TlsFiles};
use crate::error::{Error, Result};
use crate::service::{Limits, Service, Source};

/// Loads the certificate and key. Any failure is an error: a server configured for
/// TLS never falls back to plaintext.
fn load_tls(files: &TlsFiles) -> Result<TlsAcceptor> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let open = |path: &std::path::Path| {
        std::fs::File::open(path)
            .map(BufReader::new)
            .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(&files.cert)?)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate in the file",
            files.cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut open(&files.key)?)
        .map_err(|e| Error::Tls(format!("{}: {e}", files.key.display())))?
        .ok_or_else(|| {
            Error::Tls(format!(
                "{}: no private key in the file",
                files.key.display()
            ))
        })?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One connection's life, shared by its task here and its handlers.
pub(crate) struct Life {
    /// Becomes true when the client's socket reaches its end or fails.
    pub(crate) gone: watch::Receiver<bool>,
    authenticated: watch::Sender<bool>,
    /// The slot of the unauthenticated pool, given back at authentication.
    startup_slot: Mutex<Option<OwnedSemaphorePermit>>,
    /// Statements running (or streaming rows) now.
    running: AtomicUsize,
    /// When the last statement ended (or the connection authenticated).
    last_active: Mutex<Instant>,
}

impl Life {
    /// Called once the client has authenticated.
    pub(crate) fn authenticated(&self) {
        if let Ok(mut slot) = self.startup_slot.lock() {
            slot.take();
        }
        self.touch();
        self.authenticated.send_replace(true);
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last_active.lock() {
            *last = Instant::now();
        }
    }

    /// Marks a statement running until the guard is dropped.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.running.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// How long the session has had nothing running (zero while something runs).
    fn idle_for(&self) -> Duration {
        if self.running.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_active
            .lock()
            .map(|last| last.elapsed())
            .unwrap_or_default()
    }
}

/// A statement running on a connection (see [`Life::busy`]).
pub(crate) struct Busy(Arc<Life>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What every connection shares.
struct Shared {
    service: Arc<Service>,
    credentials: Credentials,
    gatekeeping: Arc<Gatekeeping>,
    canceller: Arc<Canceller>,
}

/// One connection's handlers: the shared query service, its own startup handler.
struct Connection {
    shared: Arc<Shared>,
    startup: Arc<Startup>,
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.shared.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.shared.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.shared.canceller.clone()
    }
}

/// A running server's address, known once it listens.
pub type OnListening = Box<dyn FnOnce(SocketAddr, &str) + Send>;

/// How long connections get to close after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves the warehouse until the process is interrupted (Ctrl-C or SIGTERM).
/// `on_listening` is called with the bound address and a description of the
/// authentication once the socket is open.
pub async fn serve(config: ServeConfig, on_listening: OnListening) -> Result<()> {
    config.check()?;
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    let warehouse = Warehouse::open(&config.warehouse).map_err(|e| Error::Config(e.to_string()))?;
    let source =
        Arc::new(Source::open(warehouse, config.cluster.clone(), config.warm_tables).await?);
    let limits = Limits {
        statement_timeout: config.statement_timeout,
        query_memory: config.query_memory,
        memory_ceiling: config.memory_ceiling,
    };
    let manager = Arc::new(ConnectionManager::new());
    let cancels = Arc::new(Cancels::default());
    let gatekeeping = Arc::new(Gatekeeping {
        manager: manager.clone(),
        cancels: cancels.clone(),
        failures: Arc::new(Failures::new(config.auth_failure_delay)),
        sessions: Arc::new(Semaphore::new(config.max_connections)),
        max_sessions: config.max_connections,
        tls_required: tls.is_some(),
    });
    let shared = Arc::new(Shared {
        service: Arc::new(Service::new(source, limits, config.result_cache)),
        credentials: Credentials::new(&config.users, config.auth),
        canceller: Arc::new(Canceller {
            cancels,
            inner: DefaultCancelHandler::new(manager),
        }),
        gatekeeping,
    });
    let listener = TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let description = format!(
        "{}, TLS {}",
        shared.credentials.describe(),
        if tls.is_some() { "on" } else { "off" }
    );
    tracing::info!(%address, auth = %description, "listening");
    on_listening(address, &description);

    let startups = Arc::new(Semaphore::new(config.max_unauthenticated));
    let timeouts = Timeouts {
        auth: config.auth_timeout,
        idle: config.idle_session_timeout,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut accept_errors = Throttle::default();
    let mut full_pool = Throttle::default();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    accept_errors.backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    // EMFILE and the like: retrying at once would spin on the same
                    // error. Sleep, longer each time, and log once in a while.
                    let pause = accept_errors.failed();
                    if let Some(suppressed) = accept_errors.should_log() {
                        tracing::warn!(error = %e, suppressed, pause_ms = pause.as_millis() as u64, "accept failed");
                    }
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            },
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let Ok(startup_slot) = startups.clone().try_acquire_owned() else {
            if let Some(suppressed) = full_pool.should_log() {
                tracing::warn!(%peer, suppressed, cap = config.max_unauthenticated, "connection closed: too many connections authenticating");
            }
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (socket, watcher) = match watched(socket) {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors too: the connection is dropped, and the loop
                // pauses as for a failed accept.
                let pause = accept_errors.failed();
                if let Some(suppressed) = accept_errors.should_log() {
                    tracing::warn!(%peer, error = %e, suppressed, pause_ms = pause.as_millis() as u64, "cannot watch a connection; closed");
                }
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        let (gone_tx, gone_rx) = watch::channel(false);
        let (authenticated, _) = watch::channel(false);
        let life = Arc::new(Life {
            gone: gone_rx,
            authenticated,
            startup_slot: Mutex::new(Some(startup_slot)),
            running: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
        });
        let startup = Arc::new(Startup::new(
            &shared.credentials,
            shared.gatekeeping.clone(),
            life.clone(),
        ));
        let handlers = Connection {
            shared: shared.clone(),
            startup,
        };
        let tls = tls.clone();
        let shutdown = shutdown_rx.clone();
        connections.spawn(async move {
            let watch = tokio::spawn(watch_hangup(watcher, gone_tx));
            run_connection(socket, tls, handlers, life, timeouts, shutdown, peer).await;
            watch.abort();
        });
    }
    tracing::info!(
        connections = connections.len(),
        "shutting down: closing connections and stopping their statements"
    );
    drop(listener);
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Timeouts {
    auth: Duration,
    idle: Option<Duration>,
}

/// Runs one connection: closed when authentication takes too long, when the session
/// idles too long, or at shutdown. Closing drops pgwire's processing, and with it the
/// statement running and its execution.
async fn run_connection(
    socket: TcpStream,
    tls: Option<TlsAcceptor>,
    handlers: Connection,
    life: Arc<Life>,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
    peer: SocketAddr,
) {
    let conn = process_socket(socket, tls, handlers);
    tokio::pin!(conn);
    let mut authenticated = life.authenticated.subscribe();
    let auth_deadline = tokio::time::sleep(timeouts.auth);
    tokio::pin!(auth_deadline);
    tokio::select! {
        ended = &mut conn => return ended_with(ended, peer),
        _ = shutdown.wait_for(|s| *s) => return,
        _ = authenticated.wait_for(|a| *a) => {}
        _ = &mut auth_deadline => {
            if !*life.authenticated.borrow() {
                tracing::warn!(%peer, timeout_ms = timeouts.auth.as_millis() as u64, "connection closed: authentication timeout");
                return;
            }
        }
    }
    let check_every = timeouts
        .idle
        .map(|idle| (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)))
        .unwrap_or(Duration::from_secs(3600));
    let mut tick = tokio::time::interval(check_every);
    loop {
        tokio::select! {
            ended = &mut conn => return ended_with(ended, peer),
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {
                if let Some(idle) = timeouts.idle
                    && life.idle_for() >= idle
                {
                    tracing::info!(%peer, idle_ms = idle.as_millis() as u64, "connection closed: idle-session timeout");
                    return;
                }
            }
        }
    }
}

fn ended_with(ended: std::io::Result<()>, peer: SocketAddr) {
    if let Err(e) = ended {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// The socket for pgwire, and a second descriptor of it to watch for the hang-up.
fn watched(socket: TcpStream) -> std::io::Result<(TcpStream, TcpStream)> {
    let std = socket.into_std()?;
    let second = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, TcpStream::from_std(second)?))
}

/// Signals `gone` when the client's socket reaches its end or fails. Peeks, so pgwire
/// still reads every byte; while unread bytes wait (pgwire is busy with a statement),
/// looks again every 200 ms.
async fn watch_hangup(socket: TcpStream, gone: watch::Sender<bool>) {
    let mut byte = [0u8; 1];
    loop {
        match socket.peek(&mut byte).await {
            Ok(0) | Err(_) => {
                gone.send_replace(true);
                return;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A back-off and a log that speaks at most once per interval.
#[derive(Default)]
struct Throttle {
    backoff: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    const LOG_EVERY: Duration = Duration::from_secs(10);

    /// The next pause after a failure: 100 ms, doubling to 2 s.
    fn failed(&mut self) -> Duration {
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        self.backoff
    }

    /// Whether to log now; if so, how many events went unlogged since the last line.
    fn should_log(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last_log {
            Some(at) if now.duration_since(at) < Self::LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_log = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
