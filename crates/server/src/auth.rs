//! The startup phase: who may connect, how they prove it, and what every connection is
//! registered with (cancel keys).
//!
//! pgwire's SASL and MD5 handlers keep the exchange's state in the handler itself, so
//! a fresh [`Startup`] is made for every connection (see `server.rs`).
//!
//! Against guessing:
//! - an unknown user is asked for a SCRAM proof with a salt that is the same at every
//!   attempt, derived from a per-server secret and the user name as PostgreSQL's
//!   `scram_mock_salt` does, and with the same iteration count as a real user: the
//!   exchange does not tell who exists;
//! - every failed authentication is logged at WARN with the peer address and the user
//!   name (never what was sent as a password), and answered only after a delay that
//!   doubles with each failure from the same address ([`Failures`]);
//! - a connection holds a session slot (`--max-connections`) only once it has proved
//!   who it is; before that it holds a slot of the smaller unauthenticated pool, for
//!   at most the authentication timeout (`server.rs`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::{AuthMethod, Users};
use crate::server::Life;

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

/// HMAC-SHA-256 (RFC 2104) of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// SCRAM-SHA-256 credentials: each user's salted password, computed once at start.
/// An unknown user gets a mock one: a salt and key derived from a secret drawn at
/// start and the user name, so that asking twice for the same unknown user gives the
/// same salt, as asking for a real user does (a fresh salt at each attempt would tell
/// the user does not exist). The exchange then fails as a wrong password does.
#[derive(Debug)]
struct ScramSource {
    salted: HashMap<String, (Vec<u8>, Vec<u8>)>,
    mock_secret: Vec<u8>,
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
        ScramSource {
            salted,
            mock_secret: random_bytes(32),
        }
    }

    /// The salt and stored key a user is challenged with.
    fn credentials(&self, user: &str) -> (Vec<u8>, Vec<u8>) {
        match self.salted.get(user) {
            Some((salt, key)) => (salt.clone(), key.clone()),
            None => {
                let salt = hmac_sha256(&self.mock_secret, &[b"salt\0", user.as_bytes()]);
                let key = hmac_sha256(&self.mock_secret, &[b"key\0", user.as_bytes()]);
                (salt[..16].to_vec(), key.to_vec())
            }
        }
    }
}

#[async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let (salt, key) = self.credentials(login.user().unwrap_or_default());
        Ok(Password::new(Some(salt), key))
    }
}

/// Failed authentications by peer address, for the delay before each refusal.
pub(crate) struct Failures {
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    base: Duration,
}

impl Failures {
    /// Failures older than this are forgotten.
    const FORGET_AFTER: Duration = Duration::from_secs(600);
    /// The delay stops doubling after this many failures (200 ms → 3.2 s).
    const MAX_DOUBLINGS: u32 = 4;

    pub(crate) fn new(base: Duration) -> Self {
        Failures {
            by_address: Mutex::new(HashMap::new()),
            base,
        }
    }

    /// Records a failure from `address`; returns how long to wait before answering:
    /// the base delay, doubled for each earlier failure from that address in the last
    /// ten minutes, up to 16 times the base.
    pub(crate) fn record(&self, address: IpAddr) -> (u32, Duration) {
        let now = Instant::now();
        let Ok(mut map) = self.by_address.lock() else {
            return (1, self.base);
        };
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| now.duration_since(*at) < Self::FORGET_AFTER);
        }
        let entry = map.entry(address).or_insert((0, now));
        if now.duration_since(entry.1) >= Self::FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = (entry.0 - 1).min(Self::MAX_DOUBLINGS);
        (entry.0, self.base * 2u32.pow(doublings))
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

/// A connection's secret key (as bytes), its cancel signal and its user.
type Registered = (Vec<u8>, watch::Sender<u64>, String);

/// A connection's cancel signal; removed from [`Cancels`] when the connection ends.
pub(crate) struct CancelSlot {
    pid: i32,
    sender: watch::Sender<u64>,
    cancels: Arc<Cancels>,
}

impl CancelSlot {
    /// The connection's backend process id (what `pg_backend_pid()` answers).
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Every connection's cancel signal, for `pg_cancel_backend(pid)`.
    pub(crate) fn cancels(&self) -> Arc<Cancels> {
        self.cancels.clone()
    }

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
        let user = client
            .metadata()
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_default();
        if let Ok(mut map) = self.by_pid.lock() {
            // Compared as bytes: a protocol 3.0 key is sent back as 4 raw bytes.
            map.insert(pid, (key.to_bytes().to_vec(), sender.clone(), user));
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
            Some((k, sender, _)) if k[..] == key.to_bytes()[..] => {
                sender.send_modify(|n| *n += 1);
                true
            }
            _ => false,
        }
    }

    /// The connections of `user`, by backend pid (what `pg_stat_activity` lists).
    pub(crate) fn of_user(&self, user: &str) -> Vec<(i32, String)> {
        let Ok(map) = self.by_pid.lock() else {
            return vec![];
        };
        let mut out: Vec<(i32, String)> = map
            .iter()
            .filter(|(_, (_, _, owner))| owner == user)
            .map(|(pid, (_, _, owner))| (*pid, owner.clone()))
            .collect();
        out.sort();
        out
    }

    /// `pg_cancel_backend(pid)` from a session of `user`: cancels the statement the
    /// connection `pid` is running when that connection is the same user's (as
    /// PostgreSQL allows without pg_signal_backend); false for another user's or an
    /// unknown pid, as PostgreSQL answers an unknown one.
    pub(crate) fn signal(&self, pid: i32, user: &str) -> bool {
        let Ok(map) = self.by_pid.lock() else {
            return false;
        };
        match map.get(&pid) {
            Some((_, sender, owner)) if owner == user => {
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

/// What every connection's [`Startup`] shares.
pub(crate) struct Gatekeeping {
    pub(crate) manager: Arc<ConnectionManager>,
    pub(crate) cancels: Arc<Cancels>,
    pub(crate) failures: Arc<Failures>,
    /// Slots of authenticated sessions (`--max-connections`).
    pub(crate) sessions: Arc<Semaphore>,
    pub(crate) max_sessions: usize,
    pub(crate) tls_required: bool,
}

/// A session slot, held in the connection's extensions until it ends.
struct SessionSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// One connection's startup handler.
pub(crate) struct Startup {
    gate: Gate,
    params: Arc<DefaultServerParameterProvider>,
    keys: Arc<RandomPidSecretKeyGenerator>,
    shared: Arc<Gatekeeping>,
    life: Arc<Life>,
    /// Password messages seen: SCRAM's second one is the proof that completes it.
    password_messages: AtomicUsize,
}

impl Startup {
    pub(crate) fn new(creds: &Credentials, shared: Arc<Gatekeeping>, life: Arc<Life>) -> Self {
        let manager = shared.manager.clone();
        let gate = if let Some(source) = &creds.scram {
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
            shared,
            life,
            password_messages: AtomicUsize::new(0),
        }
    }

    /// Whether `message` is the one that completes authentication when it is right:
    /// the startup message without passwords, the md5 answer, SCRAM's final proof.
    fn completes(&self, message: &PgWireFrontendMessage) -> bool {
        match (&self.gate, message) {
            (Gate::Trust, PgWireFrontendMessage::Startup(_)) => true,
            (Gate::Md5(_), PgWireFrontendMessage::PasswordMessageFamily(_)) => true,
            (Gate::Scram(_), PgWireFrontendMessage::PasswordMessageFamily(_)) => {
                self.password_messages.fetch_add(1, Ordering::SeqCst) == 1
            }
            _ => false,
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
        if is_startup
            && self.shared.tls_required
            && !client.is_secure()
            && !client.socket_addr().ip().is_loopback()
        {
            tracing::warn!(peer = %client.socket_addr(), "connection refused: no TLS");
            return Err(fatal(
                "28000",
                "this server requires TLS from non-local clients (sslmode=require)".into(),
            ));
        }
        // A session slot is taken just before the message that completes
        // authentication, and kept only if it does: unauthenticated clients never hold
        // one, however many there are.
        let slot = if self.completes(&message) {
            match self.shared.sessions.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let cap = self.shared.max_sessions;
                    tracing::warn!(peer = %client.socket_addr(), cap, "connection refused: too many clients");
                    return Err(fatal(
                        "53300",
                        format!("sorry, too many clients already (townstat serve allows {cap})"),
                    ));
                }
            }
        } else {
            None
        };
        let outcome = match &self.gate {
            Gate::Scram(h) => h.on_startup(client, message).await,
            Gate::Md5(h) => h.on_startup(client, message).await,
            Gate::Trust => {
                if let PgWireFrontendMessage::Startup(ref startup) = message {
                    protocol_negotiation(client, startup).await?;
                    save_startup_parameters_to_metadata(client, startup);
                    let (pid, key) = self.keys.generate(client);
                    client.set_pid_and_secret_key(pid, key.clone());
                    let (handle, guard) = self.shared.manager.register(pid, key);
                    client
                        .session_extensions()
                        .insert::<Arc<ConnectionHandle>>(handle);
                    client.session_extensions().insert::<ConnectionGuard>(guard);
                    finish_authentication(client, self.params.as_ref()).await?;
                }
                Ok(())
            }
        };
        if let Err(e) = outcome {
            if !matches!(e, PgWireError::IoError(_)) {
                let peer = client.socket_addr();
                let (count, delay) = self.shared.failures.record(peer.ip());
                tracing::warn!(
                    peer = %peer,
                    user = client.metadata().get(pgwire::api::METADATA_USER).map(String::as_str).unwrap_or(""),
                    failures = count,
                    delay_ms = delay.as_millis() as u64,
                    reason = %e,
                    "authentication failed"
                );
                // The answer waits: guessing from one address slows down.
                tokio::time::sleep(delay).await;
            }
            return Err(e);
        }
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery)
            && client.session_extensions().get::<CancelSlot>().is_none()
        {
            if let Some(permit) = slot {
                client.session_extensions().insert(SessionSlot(permit));
            }
            client.session_extensions().insert(self.life.clone());
            self.life.authenticated();
            self.shared.cancels.register(client);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn unknown_users_get_a_stable_salt_of_their_own() {
        let mut users = std::collections::BTreeMap::new();
        users.insert("alice".to_string(), "s3cret".to_string());
        let source = ScramSource::new(&Users::from_map(users));
        let (salt, key) = source.credentials("mallory");
        assert_eq!(salt.len(), 16);
        assert_eq!(key.len(), 32);
        for _ in 0..5 {
            assert_eq!(source.credentials("mallory"), (salt.clone(), key.clone()));
        }
        assert_ne!(source.credentials("eve").0, salt);
        let (real_salt, _) = source.credentials("alice");
        assert_eq!(real_salt.len(), salt.len());
        assert_eq!(source.credentials("alice").0, real_salt);
    }

    #[test]
    fn failures_back_off_per_address() {
        let failures = Failures::new(Duration::from_millis(200));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let delays: Vec<u128> = (0..7).map(|_| failures.record(a).1.as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 3200, 3200]);
        assert_eq!(failures.record(b), (1, Duration::from_millis(200)));
    }
}
