#!/usr/bin/env python3
"""`townstat serve` through the clients statisticians and BI tools use: psql,
psycopg 3 and SQLAlchemy. Starts real servers on 127.0.0.1 (free ports) over a
warehouse the binary built, and checks values, not only that calls return.

    usage: serve_clients.py WAREHOUSE TOWNSTAT_BINARY

The warehouse gets one more nightly run (`--force`) during the freshness check.
Last line: "serve_clients: N passed, M failed"; exit status 1 when M > 0.
"""

import concurrent.futures
import csv
import io
import os
import subprocess
import sys
import tempfile
import threading
import time

import psycopg
import sqlalchemy

WAREHOUSE, BIN = sys.argv[1], sys.argv[2]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER, PASSWORD = "alice", "Tr0ub4dor&3 with spaces"
OTHER_USER, OTHER_PASSWORD = "bob", "another one"
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


class Server:
    """A `townstat serve` process; `port` is where it listens."""

    def __init__(self, *args, env=None):
        full_env = dict(os.environ, TOWNSTAT_WAREHOUSE=WAREHOUSE)
        full_env.pop("RUST_LOG", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", *args],
            cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "listening on 127.0.0.1:" not in line:
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])

    def dsn(self, password=PASSWORD, user=USER, **extra):
        parts = dict(host="127.0.0.1", port=self.port, user=user, password=password,
                     dbname="townstat", connect_timeout=10, **extra)
        return " ".join(f"{k}='{v}'" for k, v in parts.items())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def townstat_csv(query):
    out = subprocess.run([BIN, "--warehouse", WAREHOUSE, "sql", query, "--format", "csv"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return list(csv.reader(io.StringIO(out.stdout)))[1:]


def sqlstate_of(fn):
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    return None


def users_file(tmp):
    path = os.path.join(tmp, "users")
    with open(path, "w") as f:
        f.write(f"# townstat serve users\n{USER}:{PASSWORD}\n{OTHER_USER}:{OTHER_PASSWORD}\n")
    os.chmod(path, 0o600)
    return path


def latest_run(conn):
    return conn.execute("SELECT run_id FROM run ORDER BY finished_at DESC LIMIT 1").fetchone()[0]


def scram_server_checks(server):
    # Passwords: SCRAM-SHA-256 refuses a wrong one, accepts the right one.
    try:
        psycopg.connect(server.dsn(password="wrong")).close()
        check("wrong password refused", False, "connected")
    except psycopg.OperationalError as e:
        check("wrong password refused", "password authentication failed" in str(e).lower(), str(e))
    conn = psycopg.connect(server.dsn(), autocommit=True)

    # psql: \d+ and \dt+ show the Chinese labels as comments.
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    psql = ["psql", "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", USER, "-d", "townstat"]
    out = subprocess.run(psql + ["-c", r"\d+ town_year"], env=env, capture_output=True, text=True)
    lines = {l.split("|")[0].strip(): l.split("|")[-1].strip() for l in out.stdout.splitlines() if "|" in l}
    check(r"psql \d+ town_year: column labels", lines.get("revenue") == "营业收入(元)"
          and lines.get("town_id") == "专业镇编号", out.stdout[:400] + out.stderr)
    out = subprocess.run(psql + ["-c", r"\dt+ town_year"], env=env, capture_output=True, text=True)
    check(r"psql \dt+ town_year: table label", "专业镇年度指标" in out.stdout, out.stdout + out.stderr)
    out = subprocess.run(psql + ["-c", r"\d town_year"], env=env, capture_output=True, text=True)
    check(r"psql \d town_year: columns and types", "revenue" in out.stdout and "numeric" in out.stdout,
          out.stdout + out.stderr)

    # SQLAlchemy reflection, as Superset's table sync uses it: tables, columns with
    # their types, nullability and labels, the table's label.
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://{USER}:{PASSWORD.replace('&', '%26').replace(' ', '%20')}"
        f"@127.0.0.1:{server.port}/townstat")
    try:
        insp = sqlalchemy.inspect(engine)
        tables = set(insp.get_table_names())
        check("SQLAlchemy inspect(): tables", {"town_year", "county_year", "city_year", "enterprise"} <= tables,
              sorted(tables))
        check("SQLAlchemy inspect(): has_table", insp.has_table("town_year") and not insp.has_table("nope"))
        columns = {c["name"]: c for c in insp.get_columns("town_year")}
        check("SQLAlchemy inspect(): columns", {"town_id", "year", "revenue", "entities_end"} <= set(columns),
              sorted(columns))
        check("SQLAlchemy inspect(): types and nullability",
              str(columns["town_id"]["type"]) == "TEXT" and columns["town_id"]["nullable"] is False
              and str(columns["year"]["type"]) == "BIGINT", columns.get("town_id"))
        check("SQLAlchemy inspect(): column labels", columns["revenue"]["comment"] == "营业收入(元)"
              and columns["town_id"]["comment"] == "专业镇编号", columns.get("revenue"))
        check("SQLAlchemy inspect(): table label",
              insp.get_table_comment("town_year").get("text") == "专业镇年度指标", insp.get_table_comment("town_year"))
        check("SQLAlchemy inspect(): money is NUMERIC(20, 2)",
              str(columns["revenue"]["type"]) == "NUMERIC(20, 2)", columns["revenue"]["type"])
        # Warehouse tables declare no key, index or constraint: the answer is "none",
        # not an error (Superset reads all four when it makes a dataset).
        keys = {}
        for call in ("get_pk_constraint", "get_indexes", "get_foreign_keys", "get_unique_constraints"):
            try:
                keys[call] = getattr(insp, call)("town_year")
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                keys[call] = f"error: {e}"[:200]
        check("SQLAlchemy inspect(): keys, indexes, foreign keys, unique constraints: none",
              keys == {"get_pk_constraint": {"name": None, "constrained_columns": []},
                       "get_indexes": [], "get_foreign_keys": [], "get_unique_constraints": []}, keys)
        with engine.connect() as c:
            n = c.execute(sqlalchemy.text("SELECT count(*) FROM town_year WHERE year = :y"), {"y": 2025}).scalar()
        check("SQLAlchemy query with a bound parameter", n == int(townstat_csv(
            "SELECT count(*) FROM town_year WHERE year = 2025")[0][0]), n)
    except Exception as e:  # a failure here is a finding, not a crash
        check("SQLAlchemy", False, repr(e)[:500])
    finally:
        engine.dispose()

    # Correlated and parameterised subqueries in the SELECT list give DataFusion's
    # answer, the same as townstat sql's, never a NULL put in their place.
    query = ("SELECT t.town_id, (SELECT count(*) FROM town_year y WHERE y.town_id = t.town_id "
             "AND y.year <= 2020) AS years FROM town t ORDER BY t.town_id")
    expected = [[a, b] for a, b in townstat_csv(query)]
    got = [[a, str(b)] for a, b in conn.execute(query).fetchall()]
    check("correlated subquery in the SELECT list", got == expected and expected, (got[:2], expected[:2]))
    got = [[a, str(b)] for a, b in conn.execute(query.replace("2020", "%s"), (2020,), prepare=True).fetchall()]
    check("parameter inside a subquery of the SELECT list", got == expected, (got[:2], expected[:2]))

    # Prepared statements with parameters (server-side, psycopg prepare=True).
    query = ("SELECT town_id, CAST(revenue AS VARCHAR), entities_end FROM town_year "
             "WHERE year = %s AND county_code = %s ORDER BY town_id")
    for attempt in range(2):
        rows = conn.execute(query, (2025, "140212"), prepare=True).fetchall()
    expected = townstat_csv(query.replace("%s", "2025", 1).replace("%s", "'140212'", 1))
    check("prepared statement with parameters", [[r[0], r[1], str(r[2])] for r in rows] == expected and rows,
          (rows[:2], expected[:2]))

    # Forbidden statements: refused with their SQLSTATE, nothing changed.
    before = conn.execute("SELECT count(*) FROM town_year").fetchone()[0]
    for sql in ["DROP TABLE town_year", "DELETE FROM town_year", "UPDATE town_year SET year = 0",
                "INSERT INTO town_year SELECT * FROM town_year", "CREATE TABLE t AS SELECT 1",
                "CREATE VIEW v AS SELECT 1", "TRUNCATE town_year",
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
                "COPY town_year TO '/tmp/town_year.csv'", "COPY (SELECT 1) TO STDOUT",
                "SELECT * FROM '/etc/passwd'", "SELECT * FROM read_parquet('/tmp/x.parquet')",
                "SET datafusion.execution.target_partitions = 64", "SET ROLE postgres",
                'SET "datafusion.execution.target_partitions" = 64',
                'RESET "datafusion.execution.target_partitions"',
                "SELECT 1; DROP TABLE town_year"]:
        state = sqlstate_of(lambda: conn.execute(sql))
        check(f"refused with 42501: {sql}", state == "42501", state)
    check("nothing changed after the refusals",
          conn.execute("SELECT count(*) FROM town_year").fetchone()[0] == before)

    # The statement timeout cancels, and the connection stays usable.
    conn.execute("SET statement_timeout = '400ms'")
    started = time.monotonic()
    state = sqlstate_of(lambda: conn.execute("SELECT count(*) FROM generate_series(1, 50000000000)").fetchall())
    check("timeout cancels a long query with 57014", state == "57014" and time.monotonic() - started < 20, state)
    check("connection usable after the timeout", conn.execute("SELECT 2").fetchone()[0] == 2)
    conn.execute("SET statement_timeout = 0")
    conn.close()


def stop_query(server):
    """Superset's "Stop query": it reads pg_backend_pid() on the connection running the
    query and calls pg_terminate_backend(pid) from another; psql users call
    pg_cancel_backend the same way. Only the same user's statements can be stopped."""
    a = psycopg.connect(server.dsn(), autocommit=True)
    b = psycopg.connect(server.dsn(), autocommit=True)
    other = psycopg.connect(server.dsn(user=OTHER_USER, password=OTHER_PASSWORD), autocommit=True)
    pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
    pid_b = b.execute("SELECT pg_backend_pid()").fetchone()[0]
    check("each connection has its own backend pid", pid_a != pid_b and pid_a != 1, (pid_a, pid_b))
    check("pg_backend_pid() is the pid of the connection's cancel key",
          pid_a == a.info.backend_pid, (pid_a, a.info.backend_pid))
    long_query = "SELECT count(*) FROM generate_series(1, 50000000000)"
    # Superset's own statement (superset/db_engine_specs/postgres.py, cancel_query).
    superset = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid='{pid_a}'"
    for label, caller, sql, stops in [
            ("Superset's pg_terminate_backend over pg_stat_activity", b, superset, True),
            ("pg_cancel_backend", b, f"SELECT pg_cancel_backend({pid_a})", True),
            ("pg_cancel_backend from another user", other, f"SELECT pg_cancel_backend({pid_a})", False)]:
        outcome = {}

        def run():
            outcome["state"] = sqlstate_of(lambda: a.execute(long_query).fetchall())

        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.5)
        started = time.monotonic()
        answer = caller.execute(sql).fetchall()
        if stops:
            t.join(30)
            check(f"{label} answers true", answer == [(True,)], answer)
            check(f"{label} stops the running statement with 57014",
                  outcome.get("state") == "57014" and time.monotonic() - started < 20, outcome)
        else:
            t.join(2)
            check(f"{label} answers false", answer == [(False,)], answer)
            check(f"{label} leaves the statement running", t.is_alive(), outcome)
            b.execute(f"SELECT pg_cancel_backend({pid_a})")
            t.join(30)
        check(f"the connection is usable after {label}", a.execute("SELECT 2").fetchone()[0] == 2)
    listed = {r[0] for r in b.execute("SELECT pid FROM pg_stat_activity").fetchall()}
    check("pg_stat_activity lists the user's connections, not another user's",
          {pid_a, pid_b} <= listed and other.info.backend_pid not in listed, (listed, pid_a, pid_b))
    check("pg_cancel_backend of an unknown pid answers false",
          b.execute("SELECT pg_cancel_backend(%s)", (987654321,)).fetchone()[0] is False)
    for c in (a, b, other):
        c.close()


def jdbc(server):
    """pgjdbc, as DBeaver and Metabase use it: DatabaseMetaData.getTables/getColumns
    with the labels as REMARKS, a prepared statement, a refusal (tests/jdbc)."""
    jar = "/usr/share/java/postgresql.jar"
    out = subprocess.run(["java", "-cp", jar, os.path.join(REPO, "tests/jdbc/JdbcMetadata.java"),
                          str(server.port), USER, PASSWORD], capture_output=True, text=True, timeout=300)
    last = (out.stdout.strip().splitlines() or [""])[-1]
    check(f"JDBC metadata and queries ({last})", out.returncode == 0 and last.endswith(" 0 failed"),
          out.stdout[-1500:] + out.stderr[-1500:])


def fifty_clients(server):
    """50 connections at once, each running the town mart query: identical answers,
    equal to `townstat sql`'s."""
    query = ("SELECT town_id, year, CAST(revenue AS VARCHAR) AS revenue, entities_end, "
             "CAST(hhi AS VARCHAR) AS hhi FROM town_year ORDER BY town_id, year")
    expected = townstat_csv(query)

    def one(_):
        with psycopg.connect(server.dsn(), autocommit=True) as c:
            rows = c.execute(query).fetchall()
            return [[str(v) if v is not None else "" for v in r] for r in rows]

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    check("50 concurrent clients: identical answers", all(a == answers[0] for a in answers))
    check("50 concurrent clients: equal to townstat sql", answers[0] == expected and len(expected) > 0,
          (answers[0][:2], expected[:2]))


def freshness(server):
    """A nightly run committed while connections are open is seen by their next
    statements, prepared ones included, and by new connections; no restart."""
    conn = psycopg.connect(server.dsn(), autocommit=True)
    before = latest_run(conn)
    prepared = "SELECT run_id FROM run WHERE finished_at = (SELECT max(finished_at) FROM run) AND 1 = %s"
    conn.execute(prepared, (1,), prepare=True)
    run = subprocess.run([BIN, "--warehouse", WAREHOUSE, "run", "pipelines/nightly.toml", "--as-of",
                          "2026-01-15", "--force"], cwd=REPO, capture_output=True, text=True)
    check("a nightly run commits while clients are connected", run.returncode == 0, run.stderr[-500:])
    after = townstat_csv("SELECT run_id FROM run ORDER BY finished_at DESC LIMIT 1")[0][0]
    check("the open connection sees the new run", latest_run(conn) == after != before, (before, after))
    check("a statement prepared before the run reads the new run",
          conn.execute(prepared, (1,), prepare=True).fetchone()[0] == after)
    with psycopg.connect(server.dsn(), autocommit=True) as fresh:
        check("a new connection sees the new run", latest_run(fresh) == after)
    conn.close()


def md5_server(tmp):
    server = Server("--users-file", users_file(tmp), "--auth", "md5")
    try:
        with psycopg.connect(server.dsn()) as c:
            check("md5 when asked for: right password", c.execute("SELECT 1").fetchone()[0] == 1)
        try:
            psycopg.connect(server.dsn(password="nope")).close()
            check("md5: wrong password refused", False, "connected")
        except psycopg.OperationalError as e:
            check("md5: wrong password refused", "password authentication failed" in str(e).lower(), str(e))
    finally:
        server.stop()


def tls_server(tmp):
    cert, key = os.path.join(tmp, "server.crt"), os.path.join(tmp, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    server = Server("--users-file", users_file(tmp), "--tls-cert", cert, "--tls-key", key)
    try:
        with psycopg.connect(server.dsn(sslmode="require")) as c:
            check("TLS: sslmode=require connects encrypted", c.pgconn.ssl_in_use and
                  c.execute("SELECT 1").fetchone()[0] == 1)
    finally:
        server.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        server = Server("--users-file", users_file(tmp))
        try:
            scram_server_checks(server)
            stop_query(server)
            jdbc(server)
            fifty_clients(server)
            freshness(server)
        finally:
            server.stop()
        md5_server(tmp)
        tls_server(tmp)
    print(f"serve_clients: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
