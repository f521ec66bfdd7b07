//! `townstat serve` through a real PostgreSQL client (tokio-postgres): passwords,
//! prepared statements with parameters, refusals with their SQLSTATE, the statement
//! timeout over execution and streaming, cancel requests, the connection cap, TLS that
//! fails closed. psql, psycopg and SQLAlchemy are exercised by
//! `tests/python/serve_clients.py`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

fn start(warehouse: &Path, args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_townstat"))
        .current_dir(repo())
        .env("TOWNSTAT_WAREHOUSE", warehouse)
        .env("TOWNSTAT_PG_USER", "statistician")
        .env("TOWNSTAT_PG_PASSWORD", PASSWORD)
        .env_remove("RUST_LOG")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("townstat serve starts");
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
    Server { child, port }
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
