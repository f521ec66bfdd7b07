//! The listener: TLS that either works or stops the server, a connection cap that
//! answers with SQLSTATE 53300 instead of hanging up, and a fresh startup handler per
//! connection.

use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::Arc;

use datafusion_postgres::pgwire;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use pgwire::tokio::process_socket;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use townstat_warehouse::Warehouse;

use crate::auth::{Canceller, Cancels, Credentials, Startup};
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

/// What every connection shares.
struct Shared {
    service: Arc<Service>,
    credentials: Credentials,
    manager: Arc<ConnectionManager>,
    cancels: Arc<Cancels>,
    canceller: Arc<Canceller>,
    tls_required: bool,
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

/// Serves the warehouse until the process is interrupted (Ctrl-C or SIGTERM).
/// `on_listening` is called with the bound address and a description of the
/// authentication once the socket is open.
pub async fn serve(config: ServeConfig, on_listening: OnListening) -> Result<()> {
    config.check()?;
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    let warehouse = Warehouse::open(&config.warehouse).map_err(|e| Error::Config(e.to_string()))?;
    let source = Arc::new(Source::open(warehouse, config.cluster.clone()).await?);
    let limits = Limits {
        statement_timeout: config.statement_timeout,
        query_memory: config.query_memory,
    };
    let manager = Arc::new(ConnectionManager::new());
    let cancels = Arc::new(Cancels::default());
    let shared = Arc::new(Shared {
        service: Arc::new(Service::new(source, limits)),
        credentials: Credentials::new(&config.users, config.auth),
        canceller: Arc::new(Canceller {
            cancels: cancels.clone(),
            inner: DefaultCancelHandler::new(manager.clone()),
        }),
        manager,
        cancels,
        tls_required: tls.is_some(),
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

    let permits = Arc::new(Semaphore::new(config.max_connections));
    let cap = config.max_connections;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut stop => {
                tracing::info!("shutting down");
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let permit = permits.clone().try_acquire_owned().ok();
        tokio::spawn(async move {
            let full = permit.is_none().then_some(cap);
            let startup = Arc::new(Startup::new(
                &shared.credentials,
                shared.manager.clone(),
                shared.cancels.clone(),
                shared.tls_required,
                full,
            ));
            let handlers = Connection { shared, startup };
            if let Err(e) = process_socket(socket, tls, handlers).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
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
