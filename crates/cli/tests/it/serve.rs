//! `townstat serve` through a real PostgreSQL client (tokio-postgres): passwords,
//! prepared statements with parameters, refusals with their SQLSTATE, the statement
//! timeout over execution and streaming, cancel requests, the connection cap, TLS that
//! fails closed; and hostile clients: statements too complex, engine panics, huge
//! strings, login guessing, silent sockets, idle sessions, hang-ups, SIGTERM. psql,
//! psycopg and SQLAlchemy are exercised by `tests/python/serve_clients.py`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::support::{repo, sql_csv, townstat};

/// A `townstat serve` process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PASSWORD: &str = "correct horse battery staple";

/// The binary the server runs from: `TOWNSTAT_SERVE_BIN` when set (a copy of the
/// binary just built, when several worktrees share one target directory and may
/// replace it mid-run), else the one cargo built for these tests.
fn server_bin() -> std::path::PathBuf {
    std::env::var_os("TOWNSTAT_SERVE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_townstat").into())
}

fn start(warehouse: &Path, args: &[&str]) -> Server {
    start_with(warehouse, args, None).0
}

/// Starts the server, with its stderr captured when `log` (a `RUST_LOG` filter).
fn start_with(warehouse: &Path, args: &[&str], log: Option<&str>) -> (Server, Logs) {
    start_limited(warehouse, args, log, None)
}

/// The server's log lines as they come (stderr, read by a thread).
type Logs = Arc<Mutex<Vec<String>>>;

/// Starts the server; with `log` (a `RUST_LOG` filter), its stderr is captured; with
/// `files`, it may open at most that many file descriptors.
fn start_limited(
    warehouse: &Path,
    args: &[&str],
    log: Option<&str>,
    files: Option<u32>,
) -> (Server, Logs) {
    let mut command = match files {
        Some(n) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(server_bin());
            sh
        }
        None => Command::new(server_bin()),
    };
    command
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", warehouse)
        .env("TOWNSTAT_PG_USER", "statistician")
        .env("TOWNSTAT_PG_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped());
    match log {
        Some(filter) => command.env("RUST_LOG", filter).stderr(Stdio::piped()),
        None => command.stderr(Stdio::null()),
    };
    let mut child = command.spawn().expect("townstat serve starts");
    let logs: Logs = Arc::default();
    if let Some(stderr) = child.stderr.take() {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                logs.lock().expect("logs").push(without_colours(&line));
            }
        });
    }
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints where it listens");
    let port = line
        .trim()
        .rsplit_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (Server { child, port }, logs)
}

async fn connect(port: u16, password: &str) -> Result<Client, tokio_postgres::Error> {
    let config = format!(
        "host=127.0.0.1 port={port} user=statistician password='{password}' dbname=townstat"
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

fn warehouse() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = townstat(
        &dir.path().join("wh"),
        &["run", "pipelines/nightly.toml", "--as-of", "2026-01-15"],
    );
    assert_eq!(out.code, 0, "the sample run failed: {}", out.stderr);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_real_client() {
    let dir = warehouse();
    let wh = dir.path().join("wh");
    let server = start(&wh, &["--max-connections", "4"]);

    // A wrong password is refused, as PostgreSQL refuses it.
    let wrong = connect(server.port, "guess").await.map(|_| ()).unwrap_err();
    assert_eq!(
        sqlstate(&wrong),
        SqlState::INVALID_PASSWORD.code(),
        "{wrong}"
    );

    let client = connect(server.port, PASSWORD)
        .await
        .expect("right password");

    // A prepared statement with parameters gives what `townstat sql` gives.
    let statement = client
        .prepare(
            "SELECT town_id, CAST(revenue AS VARCHAR) AS revenue, entities_end \
             FROM town_year WHERE year = $1 AND county_code = $2 ORDER BY town_id",
        )
        .await
        .expect("prepare");
    let rows = client
        .query(&statement, &[&2025_i64, &"140212"])
        .await
        .expect("query");
    let served: String = rows
        .iter()
        .map(|r| {
            format!(
                "{},{},{}\n",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, i64>(2)
            )
        })
        .collect();
    let expected = sql_csv(
        &wh,
        "SELECT town_id, CAST(revenue AS VARCHAR) AS revenue, entities_end FROM town_year \
         WHERE year = 2025 AND county_code = '140212' ORDER BY town_id",
    );
    assert!(!rows.is_empty(), "no town in 新荣 in 2025");
    assert_eq!(
        served,
        expected.split_once('\n').expect("header").1,
        "served rows differ from townstat sql"
    );

    // Every forbidden statement is refused with its SQLSTATE, and nothing changes.
    for sql in [
        "DROP TABLE town_year",
        "DELETE FROM town_year",
        "INSERT INTO town_year SELECT * FROM town_year",
        "CREATE TABLE x AS SELECT 1",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "COPY town_year TO '/tmp/town_year.csv'",
        "SELECT * FROM '/etc/passwd'",
        "SET datafusion.execution.memory_pool_size = '100GB'",
    ] {
        let e = client.simple_query(sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e}");
        let e = client.prepare(sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "prepared {sql}: {e}");
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM town_year", &[])
        .await
        .expect("count")
        .get(0);
    assert!(n > 0);

    // The timeout stops a statement still computing, and one still streaming rows;
    // the connection stays usable.
    client
        .batch_execute("SET statement_timeout = '500ms'")
        .await
        .expect("set timeout");
    for sql in [
        "SELECT count(*) FROM generate_series(1, 50000000000)",
        "SELECT * FROM generate_series(1, 50000000000)",
    ] {
        let started = Instant::now();
        let e = client.simple_query(sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), SqlState::QUERY_CANCELED.code(), "{sql}: {e}");
        assert!(started.elapsed() < Duration::from_secs(20), "{sql} ran on");
    }
    let one: i64 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("usable")
        .get(0);
    assert_eq!(one, 1);

    // A cancel request stops the statement.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .expect("no timeout");
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await
    });
    let e = client
        .simple_query("SELECT * FROM generate_series(1, 50000000000)")
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(sqlstate(&e), SqlState::QUERY_CANCELED.code(), "{e}");
    canceller.await.expect("join").expect("cancel sent");

    // The connection cap (4 here) answers the fifth client with 53300.
    let mut open = vec![];
    for _ in 0..3 {
        open.push(connect(server.port, PASSWORD).await.expect("under the cap"));
    }
    let refused = connect(server.port, PASSWORD)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        sqlstate(&refused),
        SqlState::TOO_MANY_CONNECTIONS.code(),
        "{refused}"
    );
    drop(open);
}

/// A dashboard's repeated statements are answered from the result cache, in both
/// protocols, with the rows an execution gives; the first statement after a new run
/// commits reads the new run, never the older run's cached answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_statements_are_answered_from_the_run_they_read() {
    let dir = warehouse();
    let wh = dir.path().join("wh");
    let (server, logs) = start_with(&wh, &[], Some("townstat_server=debug"));
    let client = connect(server.port, PASSWORD).await.expect("connect");
    let count = || {
        logs.lock()
            .expect("logs")
            .iter()
            .filter(|l| l.contains("result cache hit"))
            .count()
    };
    // The server's log lines arrive through a pipe a thread reads, possibly after the
    // answer they belong to: wait (up to 5 s) for `expected` hits, then a little
    // longer so that a hit too many would show too.
    let settled = |expected: usize| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while count() < expected && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        count()
    };
    let summary = "SELECT max(year) AS last_year, count(*) AS town_years, \
                   CAST(sum(revenue) AS VARCHAR) AS revenue FROM town_year";
    let simple = |rows: Vec<tokio_postgres::SimpleQueryMessage>| -> Vec<String> {
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            })
            .collect()
    };
    let first = simple(client.simple_query(summary).await.expect("first"));
    assert_eq!(settled(0).await, 0, "a first execution is no hit");
    // The same statement with other spacing and keyword case is the same statement.
    let again = simple(
        client
            .simple_query(&summary.replace("SELECT", "select").replace(", ", ",  "))
            .await
            .expect("again"),
    );
    assert_eq!(again, first);
    assert_eq!(settled(1).await, 1);
    // Extended protocol: the parameters are part of the key.
    let by_year = "SELECT town_id, entities_end FROM town_year WHERE year = $1 ORDER BY town_id";
    let rows = |year: i64| {
        let client = &client;
        async move {
            client
                .query(by_year, &[&year])
                .await
                .expect("by year")
                .iter()
                .map(|r| format!("{}:{}", r.get::<_, String>(0), r.get::<_, i64>(1)))
                .collect::<Vec<_>>()
        }
    };
    let y2024 = rows(2024).await;
    let y2025 = rows(2025).await;
    assert_ne!(y2024, y2025);
    assert_eq!(rows(2024).await, y2024);
    assert_eq!(rows(2025).await, y2025);
    assert_eq!(settled(3).await, 3);
    // Not cached: an answer that depends on the moment.
    let clock = "SELECT count(*) AS n, CAST(now() AS VARCHAR) AS at FROM town_year";
    simple(client.simple_query(clock).await.expect("clock"));
    simple(client.simple_query(clock).await.expect("clock"));
    assert_eq!(settled(3).await, 3, "now() is never served from the cache");
    // A prepared statement's plan is kept per run (its Parse is not planned again).
    let last_year = "SELECT max(year) AS y FROM town_year WHERE year > $1";
    let prepared = || {
        let client = &client;
        async move {
            client
                .query_one(last_year, &[&2000i64])
                .await
                .expect("prepared")
                .get::<_, i64>(0)
        }
    };
    let before = prepared().await;
    assert_eq!(prepared().await, before);
    assert_eq!(settled(4).await, 4);

    // A new run commits (a later run date: one more mart year, more rows loaded).
    let out = townstat(
        &wh,
        &[
            "run",
            "pipelines/nightly.toml",
            "--as-of",
            "2027-01-15",
            "--force",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = simple(client.simple_query(summary).await.expect("after"));
    assert_ne!(after, first, "the new run's figures, not the cached ones");
    assert!(after[0].starts_with("2027,"), "{after:?}");
    assert_eq!(
        settled(4).await,
        4,
        "the first statement on the new run executes"
    );
    assert_eq!(
        simple(client.simple_query(summary).await.expect("repeat")),
        after
    );
    assert_eq!(settled(5).await, 5);
    // The prepared statement reads the new run too.
    assert_eq!(prepared().await, 2027);
    assert!(before < 2027, "{before}");
    assert_eq!(settled(5).await, 5);
    // What `townstat sql` computes on the new run.
    let expected = sql_csv(&wh, summary);
    assert_eq!(expected.lines().nth(1), Some(after[0].as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_spill_within_their_memory_and_fail_cleanly_beyond() {
    let dir = warehouse();
    let server = start(&dir.path().join("wh"), &["--query-memory", "16MiB"]);
    let client = connect(server.port, PASSWORD).await.expect("connect");
    client
        .batch_execute("SET statement_timeout = '120s'")
        .await
        .expect("timeout");
    // Sorting 5 million rows (40 MB of values) in 16 MiB: the sort spills to disk.
    let row = client
        .query_one(
            "SELECT v FROM generate_series(1, 5000000) AS t(v) ORDER BY v DESC OFFSET 4999999",
            &[],
        )
        .await
        .expect("the sort spills instead of failing");
    assert_eq!(row.get::<_, i64>(0), 1);
    // One array of 5 million values cannot spill: out of memory, with PostgreSQL's
    // class, and the connection goes on.
    let e = client
        .simple_query("SELECT cardinality(array_agg(v)) FROM generate_series(1, 5000000) AS t(v)")
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(sqlstate(&e), SqlState::OUT_OF_MEMORY.code(), "{e}");
    let n: i64 = client
        .query_one("SELECT 7", &[])
        .await
        .expect("usable")
        .get(0);
    assert_eq!(n, 7);
}

#[test]
fn unsafe_configurations_do_not_start() {
    let dir = warehouse();
    let wh = dir.path().join("wh");
    // No credentials and a non-loopback address.
    let out = Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", &wh)
        .env_remove("TOWNSTAT_PG_PASSWORD")
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without credentials"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // TLS configured but the key cannot be loaded: no plaintext fallback.
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", &wh)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(dir.path().join("missing-key.pem"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS is configured but cannot be loaded"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "it listened"
    );
}

/// A log line without its terminal colour codes (`ESC [ … m`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The server's message of an error.
fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// `SELECT 1+1+…+1` with `terms` terms.
fn long_sum(terms: usize) -> String {
    format!("SELECT {}", vec!["1"; terms].join("+"))
}

async fn still_answers(client: &Client, what: &str) {
    let one: i32 = client
        .query_one("SELECT 1::INT", &[])
        .await
        .unwrap_or_else(|e| panic!("after {what}: {e}"))
        .get(0);
    assert_eq!(one, 1, "after {what}");
}

/// The server's peak resident memory, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_statements_are_refused_and_the_server_goes_on() {
    let dir = warehouse();
    let server = start(
        &dir.path().join("wh"),
        &["--statement-timeout", "60s", "--query-memory", "256MiB"],
    );
    let client = connect(server.port, PASSWORD).await.expect("connect");

    // 30,000 terms overflowed the worker's stack and aborted the server; 10,000 kept
    // the planner busy 155 s. Refused before parsing, over both protocols.
    for terms in [30_000, 10_000, 1_001] {
        let sql = long_sum(terms);
        let started = Instant::now();
        let e = client.simple_query(&sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), "54001", "{terms} terms: {e}");
        assert!(
            message(&e).contains("statement too complex"),
            "{}",
            message(&e)
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{terms} terms took {:?}",
            started.elapsed()
        );
        let e = client.prepare(&sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), "54001", "prepared, {terms} terms: {e}");
        still_answers(&client, &format!("{terms} terms")).await;
    }
    // Under the bound, the same shape runs and gives the right answer.
    let row = client
        .query_one(&format!("SELECT ({})::BIGINT", &long_sum(300)[7..]), &[])
        .await
        .expect("300 terms run");
    assert_eq!(row.get::<_, i64>(0), 300);
    // Parentheses nested beyond the parser's limit, and 2 MiB of text.
    let nested = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
    let e = client.simple_query(&nested).await.map(|_| ()).unwrap_err();
    assert_eq!(sqlstate(&e), "54001", "{e}");
    let huge = format!("SELECT '{}'", "x".repeat(2 << 20));
    let e = client.simple_query(&huge).await.map(|_| ()).unwrap_err();
    assert_eq!(sqlstate(&e), "54001", "{e}");
    still_answers(&client, "deep parentheses and 2 MiB").await;

    // The statement DataFusion panicked on in the release build on a larger
    // warehouse (docs/serve.md, "Known engine bugs"). On the sample warehouse its plan
    // has one file per table and it does not panic; either way it must give the
    // count or XX000, and the connection and the server go on. (The panic itself is
    // turned into XX000 by `service::tests::a_panic_while_*`.)
    let panics = "SELECT count(*) FROM enterprise a, enterprise b, enterprise c \
                  WHERE a.name < b.name AND b.name < c.name";
    for attempt in 0..2 {
        match client.query_one(panics, &[]).await {
            Err(e) => assert_eq!(sqlstate(&e), "XX000", "attempt {attempt}: {e}"),
            Ok(row) => assert!(row.get::<_, i64>(0) > 0, "attempt {attempt}"),
        }
        still_answers(&client, "an engine panic").await;
    }
    let other = connect(server.port, PASSWORD)
        .await
        .expect("the server still accepts");
    still_answers(&other, "an engine panic, new connection").await;

    // A string of 1.5 GB is refused before it is built, within the query memory.
    for sql in [
        "SELECT length(repeat('x', 1500000000))",
        "SELECT length(lpad('x', 1500000000, 'y'))",
    ] {
        let e = client.simple_query(sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), SqlState::OUT_OF_MEMORY.code(), "{sql}: {e}");
        assert!(message(&e).contains("MiB of text"), "{}", message(&e));
        still_answers(&client, sql).await;
    }
    if let Some(kib) = peak_rss_kib(server.child.id()) {
        assert!(kib < 1 << 20, "the server peaked at {} MiB", kib >> 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_decided_on_their_normalized_names() {
    let dir = warehouse();
    let server = start(&dir.path().join("wh"), &[]);
    let client = connect(server.port, PASSWORD).await.expect("connect");
    for sql in [
        "SET datafusion.execution.batch_size = 1",
        "SET \"datafusion.execution.batch_size\" = 1",
        "SET \"datafusion\".\"execution\".\"batch_size\" = 1",
        "SET DATAFUSION.EXECUTION.BATCH_SIZE = 1",
        "SET SESSION \"datafusion.execution.batch_size\" = 1",
        "RESET \"datafusion.execution.batch_size\"",
        "SET ballista.job.name = 'x'",
    ] {
        let e = client.simple_query(sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e}");
        let e = client.prepare(sql).await.map(|_| ()).unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "prepared {sql}: {e}");
    }
    // A quoted, upper-case session setting is the setting; RESET drops it.
    client
        .batch_execute("SET \"STATEMENT_TIMEOUT\" = '300ms'")
        .await
        .expect("quoted setting");
    let e = client
        .simple_query("SELECT count(*) FROM generate_series(1, 50000000000)")
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(sqlstate(&e), SqlState::QUERY_CANCELED.code(), "{e}");
    assert!(message(&e).contains("300 ms"), "{}", message(&e));
    client
        .batch_execute("RESET \"Statement_Timeout\"")
        .await
        .expect("reset");
    client
        .batch_execute("SET statement_timeout = '400ms'")
        .await
        .expect("set");
    client.batch_execute("RESET ALL").await.expect("reset all");
    let rows = client
        .simple_query("SHOW \"statement_timeout\"")
        .await
        .expect("show");
    let shown: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        !shown[0].contains("400"),
        "RESET ALL kept the timeout: {shown:?}"
    );
    still_answers(&client, "settings").await;
}

/// The salt and iteration count the server sends a SCRAM client-first message for
/// `user` (the exchange is then abandoned, which is no failed login).
fn scram_salt(port: u16, user: &str) -> (String, String) {
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut body = Vec::new();
    body.extend_from_slice(&196_608_i32.to_be_bytes());
    for part in ["user", user, "database", "townstat"] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    socket.write_all(&startup).expect("startup");
    let read_message = |socket: &mut std::net::TcpStream| {
        let mut head = [0u8; 5];
        socket.read_exact(&mut head).expect("message header");
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len - 4];
        socket.read_exact(&mut payload).expect("message body");
        (head[0], payload)
    };
    let (kind, payload) = read_message(&mut socket);
    assert_eq!(
        (kind, &payload[..4]),
        (b'R', &10_i32.to_be_bytes()[..]),
        "AuthenticationSASL"
    );
    let client_first = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    body.extend_from_slice(client_first.as_bytes());
    let mut message = vec![b'p'];
    message.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    message.extend_from_slice(&body);
    socket.write_all(&message).expect("client-first");
    let (kind, payload) = read_message(&mut socket);
    assert_eq!(
        (kind, &payload[..4]),
        (b'R', &11_i32.to_be_bytes()[..]),
        "SASLContinue"
    );
    let server_first = String::from_utf8(payload[4..].to_vec()).expect("text");
    let field = |name: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {server_first}"))
            .to_string()
    };
    (field("s="), field("i="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_logins_learns_nothing_and_is_slowed_and_logged() {
    let dir = warehouse();
    let (server, logs) = start_with(
        &dir.path().join("wh"),
        &["--auth-failure-delay", "100ms"],
        Some("warn"),
    );
    let port = server.port;
    // An unknown user is challenged with one salt, attempt after attempt, and the
    // same iteration count as a real user.
    let salts = tokio::task::spawn_blocking(move || {
        let unknown: Vec<(String, String)> = (0..5).map(|_| scram_salt(port, "mallory")).collect();
        let real: Vec<(String, String)> =
            (0..2).map(|_| scram_salt(port, "statistician")).collect();
        let other = scram_salt(port, "eve");
        (unknown, real, other)
    })
    .await
    .expect("join");
    let (unknown, real, other) = salts;
    assert!(unknown.iter().all(|s| s == &unknown[0]), "{unknown:?}");
    assert!(real.iter().all(|s| s == &real[0]), "{real:?}");
    assert_eq!(unknown[0].1, real[0].1, "iteration counts differ");
    assert_eq!(unknown[0].0.len(), real[0].0.len());
    assert_ne!(other.0, unknown[0].0, "two unknown users share a salt");

    // Three failures from one address: each logged at WARN with the peer, never the
    // password, and each answered later than the one before (100, 200, 400 ms).
    let mut waited = vec![];
    for (user, password) in [
        ("statistician", "guess-1"),
        ("mallory", "guess-2"),
        ("statistician", "guess-3"),
    ] {
        let config =
            format!("host=127.0.0.1 port={port} user={user} password={password} dbname=townstat");
        let started = Instant::now();
        let e = tokio_postgres::connect(&config, NoTls)
            .await
            .map(|_| ())
            .unwrap_err();
        waited.push(started.elapsed());
        assert_eq!(sqlstate(&e), SqlState::INVALID_PASSWORD.code(), "{e}");
    }
    assert!(waited[2] >= Duration::from_millis(400), "{waited:?}");
    assert!(waited[0] >= Duration::from_millis(100), "{waited:?}");
    // The right password still works.
    let client = connect(port, PASSWORD).await.expect("the right password");
    still_answers(&client, "failed logins").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = logs.lock().expect("logs").clone();
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("authentication failed"))
        .collect();
    assert_eq!(failures.len(), 3, "{lines:#?}");
    for line in &failures {
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(!line.contains("guess-"), "a password in the log: {line}");
    }
    assert!(!lines.iter().any(|l| l.contains(PASSWORD)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_idle_sessions_hang_ups_and_sigterm() {
    let dir = warehouse();
    let (mut server, logs) = start_with(
        &dir.path().join("wh"),
        &[
            "--max-connections",
            "2",
            "--max-unauthenticated",
            "4",
            "--auth-timeout",
            "1s",
            "--idle-session-timeout",
            "2s",
        ],
        Some("warn,townstat_server=info"),
    );
    let port = server.port;
    // Three sockets that send nothing do not keep a client out, and are closed after
    // the authentication timeout.
    let mut silent = vec![];
    for _ in 0..3 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    let opened = Instant::now();
    let client = connect(port, PASSWORD)
        .await
        .expect("a client among silent sockets");
    still_answers(&client, "silent sockets").await;
    for mut socket in silent {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0, "the server sent something");
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "{closed_after:?}"
    );
    // Sessions have their own cap (2): the third authenticated client is refused.
    let second = connect(port, PASSWORD).await.expect("second session");
    let e = connect(port, PASSWORD).await.map(|_| ()).unwrap_err();
    assert_eq!(sqlstate(&e), SqlState::TOO_MANY_CONNECTIONS.code(), "{e}");
    drop(second);

    // An idle session is closed after --idle-session-timeout (2 s), not a busy one.
    let started = Instant::now();
    client
        .simple_query(
            "SELECT count(*) FROM (SELECT v FROM generate_series(1, 3000000) t(v) ORDER BY v DESC)",
        )
        .await
        .expect("a statement");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        client.is_closed() || client.simple_query("SELECT 1").await.is_err(),
        "idle session kept open after {:?}",
        started.elapsed()
    );

    // A client that hangs up mid-statement stops it.
    let config = format!(
        "host=127.0.0.1 port={port} user=statistician password='{PASSWORD}' dbname=townstat"
    );
    let (leaver, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    let query = tokio::spawn(async move {
        leaver
            .simple_query("SELECT count(*) FROM generate_series(1, 50000000000)")
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    connection.abort();
    query.abort();
    let stopped = async {
        loop {
            if logs
                .lock()
                .expect("logs")
                .iter()
                .any(|l| l.contains("the client disconnected"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .unwrap_or_else(|_| panic!("no stop logged: {:#?}", logs.lock().expect("logs")));

    // SIGTERM while a statement runs: the server exits 0 within a few seconds.
    let busy = connect(port, PASSWORD).await.expect("connect");
    let running = tokio::spawn(async move {
        busy.simple_query("SELECT count(*) FROM generate_series(1, 50000000000)")
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(8),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(6),
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        running.await.expect("join").is_err(),
        "the statement finished"
    );
}

/// CPU time the process has used, in clock ticks (user + system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tick(11) + tick(12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_accept_loop_backs_off() {
    let dir = warehouse();
    let (server, logs) = start_limited(
        &dir.path().join("wh"),
        &["--auth-timeout", "1s"],
        Some("warn"),
        Some(40),
    );
    let pid = server.child.id();
    // 80 sockets that send nothing: the server runs out of descriptors after a
    // dozen (two per connection). It must pause, not spin on EMFILE.
    let mut silent = vec![];
    for _ in 0..80 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_ticks(pid) - before;
    // A spinning loop would use the 3 s (300 ticks at 100 Hz) of a core.
    assert!(used < 60, "{used} ticks of CPU in 3 s");
    let lines = logs.lock().expect("logs").clone();
    let complaints = lines
        .iter()
        .filter(|l| l.contains("accept failed") || l.contains("cannot watch a connection"))
        .count();
    assert!(
        (1..=2).contains(&complaints),
        "{complaints} lines: {lines:#?}"
    );
    // Once the sockets are gone, clients are served again.
    drop(silent);
    let started = Instant::now();
    let client = loop {
        match connect(server.port, PASSWORD).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "not served again: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    still_answers(&client, "running out of descriptors").await;
}

/// Many statements, each under its pool, or memory outside the pools, can add up to
/// more than the machine has: past `--memory-ceiling` the largest statement is
/// cancelled with 53200 and a WARN line, and the server goes on (the kernel's OOM
/// killer would have taken every session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_memory_ceiling_the_largest_statement_is_cancelled() {
    let dir = warehouse();
    let (server, logs) = start_with(
        &dir.path().join("wh"),
        &[
            "--statement-timeout",
            "120s",
            "--query-memory",
            "16GiB",
            "--memory-ceiling",
            "400MiB",
        ],
        Some("townstat_server=warn"),
    );
    let client = connect(server.port, PASSWORD).await.expect("connect");
    still_answers(&client, "before").await;
    // About 6 KB a row over every pair of enterprises and eight copies: gigabytes of
    // distinct values, each batch under the string functions' 64 MiB bound, and the
    // pool (16 GiB) far away. Only the ceiling can stop it in time.
    let sql = "SELECT count(DISTINCT repeat(a.uscc || b.uscc || k, 170)) \
               FROM enterprise a, enterprise b, \
               (VALUES ('1'), ('2'), ('3'), ('4'), ('5'), ('6'), ('7'), ('8')) AS c(k)";
    let started = Instant::now();
    let e = client.simple_query(sql).await.map(|_| ()).unwrap_err();
    assert_eq!(sqlstate(&e), "53200", "{e}");
    assert!(
        message(&e).contains("ceiling of 400 MiB"),
        "{}",
        message(&e)
    );
    let took = started.elapsed();
    still_answers(&client, "after the ceiling").await;
    let other = connect(server.port, PASSWORD)
        .await
        .expect("the server still accepts");
    still_answers(&other, "a new connection after the ceiling").await;
    // The statement grows by hundreds of MiB a second; it is stopped within a tick
    // of the watchdog and the time its tasks take to reach an await point. Without
    // the ceiling it would take gigabytes, up to its 16 GiB pool.
    let peak = peak_rss_kib(server.child.id()).expect("VmHWM");
    assert!(
        peak < 1536 << 10,
        "the server peaked at {} MiB with a 400 MiB ceiling",
        peak >> 10
    );
    let warned = logs
        .lock()
        .expect("logs")
        .iter()
        .filter(|l| l.contains("memory ceiling reached"))
        .count();
    assert_eq!(warned, 1, "{:?}", logs.lock().expect("logs"));
    eprintln!(
        "ceiling 400 MiB: cancelled after {took:?}, server peak {} MiB",
        peak >> 10
    );
}
