//! What `townstat serve` is configured with, and the checks made before it listens.
//!
//! Secrets never come from command-line flags (they would land in shell history and in
//! `ps`): passwords come from the environment or from a users file that only its owner
//! can read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// SCRAM-SHA-256 (the default, and PostgreSQL's).
    ScramSha256,
    /// MD5 challenge-response: only when asked for, for old clients.
    Md5,
}

/// Where the server's certificate and key are (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key (PKCS#8).
    pub key: PathBuf,
}

/// User name → password.
#[derive(Clone, Default)]
pub struct Users(BTreeMap<String, String>);

impl std::fmt::Debug for Users {
    // Never prints a password, only who may log in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Users {
    /// The users: from `file` when given (lines `user:password`, `#` comments), else
    /// from `TOWNSTAT_PG_USER` (default `townstat`) and `TOWNSTAT_PG_PASSWORD`. Empty
    /// when neither is set.
    pub fn load(file: Option<&Path>) -> Result<Users> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        let mut users = BTreeMap::new();
        if let Ok(password) = std::env::var("TOWNSTAT_PG_PASSWORD")
            && !password.is_empty()
        {
            let user = std::env::var("TOWNSTAT_PG_USER").unwrap_or_else(|_| "townstat".into());
            users.insert(user, password);
        }
        Ok(Users(users))
    }

    fn from_file(path: &Path) -> Result<Users> {
        let bad = |message: String| Error::Config(format!("{}: {message}", path.display()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| bad(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "the users file holds passwords and is readable by others (mode {:o}); \
                     run `chmod 600` on it",
                    mode & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut users = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(bad(format!("line {}: expected user:password", n + 1)));
            };
            if user.is_empty() || password.is_empty() {
                return Err(bad(format!("line {}: empty user or password", n + 1)));
            }
            users.insert(user.to_string(), password.to_string());
        }
        if users.is_empty() {
            return Err(bad("no users in the file".into()));
        }
        Ok(Users(users))
    }

    /// Users from a map, for tests.
    #[cfg(test)]
    pub(crate) fn from_map(map: BTreeMap<String, String>) -> Users {
        Users(map)
    }

    /// Whether no user is configured (then only loopback clients, without a password).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A user's password.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }

    /// Every user with a password, for the authentication sources.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(u, p)| (u.as_str(), p.as_str()))
    }
}

/// Everything `townstat serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The warehouse location.
    pub warehouse: String,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Who may log in; empty means loopback only, no password.
    pub users: Users,
    /// SCRAM-SHA-256 or, when asked for, MD5.
    pub auth: AuthMethod,
    /// TLS, when configured. A configured TLS that cannot be loaded stops the server.
    pub tls: Option<TlsFiles>,
    /// At most this many authenticated sessions; more are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// At most this many connections still authenticating, in a pool of their own:
    /// beyond it a new socket is closed at once. Silent sockets cannot take the
    /// sessions' slots.
    pub max_unauthenticated: usize,
    /// A connection that has not authenticated this long after it connected is
    /// closed (PostgreSQL's `authentication_timeout`).
    pub auth_timeout: Duration,
    /// A session with no statement running for this long is closed (PostgreSQL's
    /// `idle_session_timeout`); `None` keeps idle sessions open.
    pub idle_session_timeout: Option<Duration>,
    /// The delay before answering a failed authentication, doubled for each further
    /// failure from the same address (up to 16 times).
    pub auth_failure_delay: Duration,
    /// The longest a statement may run, planning, execution and sending rows
    /// included. A client may ask for less (`SET statement_timeout`), never more.
    pub statement_timeout: Duration,
    /// The memory one query may use before its sorts, joins and aggregations spill.
    pub query_memory: usize,
    /// The server's resident memory beyond which the largest running statement is
    /// cancelled with 53200 (`ceiling`); 0 turns the watchdog off.
    pub memory_ceiling: usize,
    /// A Ballista scheduler (`df://HOST:PORT`) to run queries of warehouse tables
    /// on; catalog queries stay in the server.
    pub cluster: Option<String>,
    /// Bytes of answers kept for repeated statements on the current run (`cache`);
    /// 0 turns the result cache off.
    pub result_cache: usize,
    /// Bytes of decoded columns kept for the current run's statements
    /// (townstat_query::warm); 0 turns warm tables off.
    pub warm_tables: usize,
}

impl ServeConfig {
    /// Refuses configurations that are unsafe: a password-less server reachable from
    /// other hosts, or half a TLS configuration.
    pub fn check(&self) -> Result<()> {
        if self.users.is_empty() && !self.listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "refusing to listen on {} without credentials: set TOWNSTAT_PG_PASSWORD \
                 (and TOWNSTAT_PG_USER) or --users-file, or listen on 127.0.0.1",
                self.listen
            )));
        }
        if self.max_connections == 0 {
            return Err(Error::Config("--max-connections must be at least 1".into()));
        }
        if self.max_unauthenticated == 0 {
            return Err(Error::Config(
                "--max-unauthenticated must be at least 1".into(),
            ));
        }
        if self.auth_timeout.is_zero() {
            return Err(Error::Config(
                "--auth-timeout must be more than zero".into(),
            ));
        }
        if self.statement_timeout.is_zero() {
            return Err(Error::Config(
                "--statement-timeout must be more than zero".into(),
            ));
        }
        Ok(())
    }
}

/// Parses `300`, `300s`, `1500ms` or `5min` (PostgreSQL's `statement_timeout` forms;
/// a bare number is milliseconds, as in PostgreSQL).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim().trim_matches(|c| c == '\'' || c == '"').trim();
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("min") {
        (n, 60_000.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = num.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value * unit_ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("'2s'"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("5min"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn no_password_means_loopback_only() {
        let mut c = ServeConfig {
            warehouse: "wh".into(),
            listen: "0.0.0.0:5433".parse().unwrap(),
            users: Users::default(),
            auth: AuthMethod::ScramSha256,
            tls: None,
            max_connections: 10,
            max_unauthenticated: 10,
            auth_timeout: Duration::from_secs(10),
            idle_session_timeout: None,
            auth_failure_delay: Duration::from_millis(200),
            statement_timeout: Duration::from_secs(1),
            query_memory: 1 << 20,
            memory_ceiling: 0,
            cluster: None,
            result_cache: 0,
            warm_tables: 0,
        };
        assert!(c.check().is_err());
        c.listen = "127.0.0.1:5433".parse().unwrap();
        assert!(c.check().is_ok());
        c.listen = "[::1]:5433".parse().unwrap();
        assert!(c.check().is_ok());
    }

    #[test]
    fn users_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# statisticians\nalice:s3cret\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(Users::load(Some(&path)).is_err());
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let users = Users::load(Some(&path)).unwrap();
        assert_eq!(users.password("alice"), Some("s3cret"));
        assert!(!format!("{users:?}").contains("s3cret"));
    }
}
