//! The startup phase: who may connect, how they prove it, and what every connection is
//! registered with (cancel keys).
//!
//! pgwire's SASL and MD5 handlers keep the exchange's state in the handler itself, so
//! a fresh [`Startup`] is made for every connection (see `server.rs`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use futures::Sink;
use pgwire::api::auth::md5pass::{Md5PasswordAuthStartupHandler, hash_md5_password};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PgWireConnectionState,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::watch;

use crate::config::{AuthMethod, Users};

/// PBKDF2 iterations of SCRAM-SHA-256: PostgreSQL's default.
const SCRAM_ITERATIONS: usize = 4096;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// SCRAM-SHA-256 credentials: each user's salted password, computed once at start.
/// An unknown user gets a random one, so the exchange fails the same way as a wrong
/// password and does not tell who exists.
#[derive(Debug)]
struct ScramSource {
    salted: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl ScramSource {
    fn new(users: &Users) -> Self {
        let salted = users
            .iter()
            .map(|(u, p)| {
                let salt = random_bytes(16);
                let key = gen_salted_password(p, &salt, SCRAM_ITERATIONS);
                (u.to_string(), (salt, key))
            })
            .collect();
        ScramSource { salted }
    }
}

#[async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let known = login.user().and_then(|u| self.salted.get(u));
        Ok(match known {
            Some((salt, key)) => Password::new(Some(salt.clone()), key.clone()),
            None => Password::new(Some(random_bytes(16)), random_bytes(32)),
        })
    }
}

/// MD5 credentials: the expected answer to a fresh 4-byte challenge.
#[derive(Debug)]
struct Md5Source {
    users: Users,
}

#[async_trait]
impl AuthSource for Md5Source {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salt = random_bytes(4);
        let user = login.user().unwrap_or_default();
        let expected = match self.users.password(user) {
            Some(p) => hash_md5_password(user, p, &salt).into_bytes(),
            None => random_bytes(35),
        };
        Ok(Password::new(Some(salt), expected))
    }
}

/// The parameters every client is told at startup: a read-only, non-superuser
/// session on a PostgreSQL 16 look-alike.
pub(crate) fn server_parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = format!("16.6 (townstat {})", env!("CARGO_PKG_VERSION"));
    p.is_superuser = false;
    p.default_transaction_read_only = true;
    p
}

/// Per-connection cancel signals, keyed by the backend key the client was given.
/// pgwire's own cancel only interrupts a statement until its first row is ready; this
/// one also stops the rows being streamed (see `service.rs`).
#[derive(Default)]
pub(crate) struct Cancels {
    by_pid: Mutex<HashMap<i32, Registered>>,
}

/// A connection's secret key (as bytes) and its cancel signal.
type Registered = (Vec<u8>, watch::Sender<u64>);

/// A connection's cancel signal; removed from [`Cancels`] when the connection ends.
pub(crate) struct CancelSlot {
    pid: i32,
    sender: watch::Sender<u64>,
    cancels: Arc<Cancels>,
}

impl CancelSlot {
    /// A receiver that fires on the next cancel request, not on earlier ones.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        let mut rx = self.sender.subscribe();
        rx.mark_unchanged();
        rx
    }
}

impl Drop for CancelSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.cancels.by_pid.lock() {
            map.remove(&self.pid);
        }
    }
}

impl Cancels {
    fn register<C: ClientInfo>(self: &Arc<Self>, client: &C) {
        let (pid, key) = client.pid_and_secret_key();
        let (sender, _) = watch::channel(0u64);
        if let Ok(mut map) = self.by_pid.lock() {
            // Compared as bytes: a protocol 3.0 key is sent back as 4 raw bytes.
            map.insert(pid, (key.to_bytes().to_vec(), sender.clone()));
        }
        client.session_extensions().insert(CancelSlot {
            pid,
            sender,
            cancels: self.clone(),
        });
    }

    fn cancel(&self, pid: i32, key: &SecretKey) -> bool {
        let Ok(map) = self.by_pid.lock() else {
            return false;
        };
        match map.get(&pid) {
            Some((k, sender)) if k[..] == key.to_bytes()[..] => {
                sender.send_modify(|n| *n += 1);
                true
            }
            _ => false,
        }
    }
}

/// Answers cancel requests: stops the statement in planning (pgwire's part) and the
/// rows in flight (ours).
pub(crate) struct Canceller {
    pub(crate) cancels: Arc<Cancels>,
    pub(crate) inner: DefaultCancelHandler,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let ours = self.cancels.cancel(request.pid, &request.secret_key);
        tracing::info!(pid = request.pid, matched = ours, "cancel request");
        self.inner.on_cancel_request(request).await;
    }
}

/// How this connection authenticates.
enum Gate {
    /// No users configured: the server listens on loopback only, and lets in anyone
    /// who can reach it, as PostgreSQL's `trust` does for local connections.
    Trust,
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
    Md5(Box<Md5PasswordAuthStartupHandler<Md5Source, DefaultServerParameterProvider>>),
    /// The connection cap is reached: refuse at startup with SQLSTATE 53300.
    Full(usize),
}

/// The credentials, prepared once and shared by every connection's [`Startup`].
pub(crate) struct Credentials {
    method: AuthMethod,
    /// One generator for every connection: backend process ids must be unique for
    /// cancel requests to find their connection.
    keys: Arc<RandomPidSecretKeyGenerator>,
    scram: Option<Arc<ScramSource>>,
    md5: Option<Arc<Md5Source>>,
    params: Arc<DefaultServerParameterProvider>,
}

impl Credentials {
    pub(crate) fn new(users: &Users, method: AuthMethod) -> Self {
        let (scram, md5) = match (users.is_empty(), method) {
            (true, _) => (None, None),
            (false, AuthMethod::ScramSha256) => (Some(Arc::new(ScramSource::new(users))), None),
            (false, AuthMethod::Md5) => (
                None,
                Some(Arc::new(Md5Source {
                    users: users.clone(),
                })),
            ),
        };
        Credentials {
            method,
            keys: Arc::new(RandomPidSecretKeyGenerator::default()),
            scram,
            md5,
            params: Arc::new(server_parameters()),
        }
    }

    /// A description for the startup line: never a secret.
    pub(crate) fn describe(&self) -> &'static str {
        match (&self.scram, &self.md5, self.method) {
            (None, None, _) => "no password (loopback only)",
            (_, _, AuthMethod::ScramSha256) => "SCRAM-SHA-256",
            (_, _, AuthMethod::Md5) => "md5",
        }
    }
}

/// One connection's startup handler.
pub(crate) struct Startup {
    gate: Gate,
    params: Arc<DefaultServerParameterProvider>,
    keys: Arc<RandomPidSecretKeyGenerator>,
    manager: Arc<ConnectionManager>,
    cancels: Arc<Cancels>,
    tls_required: bool,
}

impl Startup {
    pub(crate) fn new(
        creds: &Credentials,
        manager: Arc<ConnectionManager>,
        cancels: Arc<Cancels>,
        tls_required: bool,
        full: Option<usize>,
    ) -> Self {
        let gate = if let Some(cap) = full {
            Gate::Full(cap)
        } else if let Some(source) = &creds.scram {
            Gate::Scram(Box::new(
                SASLAuthStartupHandler::new(creds.params.clone())
                    .with_scram(ScramAuth::new(source.clone()))
                    .with_pid_secret_key_generator(creds.keys.clone())
                    .with_connection_manager(manager.clone()),
            ))
        } else if let Some(source) = &creds.md5 {
            Gate::Md5(Box::new(
                Md5PasswordAuthStartupHandler::new(source.clone(), creds.params.clone())
                    .with_pid_secret_key_generator(creds.keys.clone())
                    .with_connection_manager(manager.clone()),
            ))
        } else {
            Gate::Trust
        };
        Startup {
            gate,
            params: creds.params.clone(),
            keys: creds.keys.clone(),
            manager,
            cancels,
            tls_required,
        }
    }
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let is_startup = matches!(message, PgWireFrontendMessage::Startup(_));
        if is_startup {
            if let Gate::Full(cap) = self.gate {
                tracing::warn!(peer = %client.socket_addr(), cap, "connection refused: too many clients");
                return Err(fatal(
                    "53300",
                    format!("sorry, too many clients already (townstat serve allows {cap})"),
                ));
            }
            if self.tls_required && !client.is_secure() && !client.socket_addr().ip().is_loopback()
            {
                tracing::warn!(peer = %client.socket_addr(), "connection refused: no TLS");
                return Err(fatal(
                    "28000",
                    "this server requires TLS from non-local clients (sslmode=require)".into(),
                ));
            }
        }
        match &self.gate {
            Gate::Full(_) => {}
            Gate::Scram(h) => h.on_startup(client, message).await?,
            Gate::Md5(h) => h.on_startup(client, message).await?,
            Gate::Trust => {
                if let PgWireFrontendMessage::Startup(ref startup) = message {
                    protocol_negotiation(client, startup).await?;
                    save_startup_parameters_to_metadata(client, startup);
                    let (pid, key) = self.keys.generate(client);
                    client.set_pid_and_secret_key(pid, key.clone());
                    let (handle, guard) = self.manager.register(pid, key);
                    client
                        .session_extensions()
                        .insert::<Arc<ConnectionHandle>>(handle);
                    client.session_extensions().insert::<ConnectionGuard>(guard);
                    finish_authentication(client, self.params.as_ref()).await?;
                }
            }
        }
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery)
            && client.session_extensions().get::<CancelSlot>().is_none()
        {
            self.cancels.register(client);
            tracing::info!(
                peer = %client.socket_addr(),
                user = client.metadata().get(pgwire::api::METADATA_USER).map(String::as_str).unwrap_or(""),
                tls = client.is_secure(),
                "client authenticated"
            );
        }
        Ok(())
    }
}
