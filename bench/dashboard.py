#!/usr/bin/env python3
"""A dashboard load on `townstat serve`, with DuckDB as the anchor.

    usage: dashboard.py WAREHOUSE [TOWNSTAT_BINARY] [CLIENTS] [ROUNDS]

A Superset dashboard of the programme fires a dozen chart queries per viewer, and
between two nightly runs every answer is the same. CLIENTS viewers (default 50) each
run the 12 chart queries below ROUNDS times (default 10), all at once, over their own
psycopg connection (one thread each). Measured three ways in the same run, on the same
files:

  townstat      `townstat serve` as shipped (result cache on, 256MiB);
  townstat.processes
                the same server and load, the CLIENTS viewers spread over 5 client
                processes (a thread per viewer in each): in one Python process the
                viewers queue for Python's global lock while they decode, and once the
                server answers from its cache that queue is most of the tail (p99
                17-23 ms in one process, 7-8 ms in five, same server, 2026-12-07);
  townstat_nc   `townstat serve --result-cache 0` (every statement executed);
  duckdb        one DuckDB process over the same Parquet files (the last committed
                run's Delta files, bench/warehouse_files.py), a thread and a cursor per
                client: the engine a statistician would otherwise put behind a
                dashboard.
  pgbench_simple, pgbench_extended
                `townstat serve` as shipped under pgbench (PostgreSQL's own load
                client, in C): the same CLIENTS connections on 2 threads, each chart a
                one-statement script of equal weight, CLIENTS x 12 x ROUNDS statements
                in all, over the simple and the extended protocol (psycopg and JDBC use
                the extended one). The Python clients above hold Python's global lock
                while they decode, so their tail is partly their own; pgbench's is the
                server's. Latency per statement from pgbench's log. Skipped, and said
                so in the output, when pgbench is not on PATH.

Each query's latency is taken in the client, from send to the last row decoded (so it
includes Python's decoding, for all three). Before the load every chart query runs
once, alone: its first execution (`first_ms`, the cold statement; the cache cannot
help it). Prints one JSON object: per engine q/s, p50/p95/p99/max in ms, and the
first-execution times; nothing is asserted (bench/README.md).
"""

import concurrent.futures
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path

import duckdb
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from warehouse_files import register  # noqa: E402

WAREHOUSE = sys.argv[1]
BIN = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", str(Path(__file__).resolve().parent.parent / "target")),
    "release", "townstat")
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 50
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 10
PROCESSES = 5
PASSWORD = "bench-only-password"
TABLES = ["town", "town_year", "county_year", "city_year", "town_year_yoy",
          "town_evaluation", "town_member_year", "town_year_structure", "town_cluster"]


def charts(year: int) -> dict:
    """The dashboard: 12 charts, literals in the SQL as Superset sends them."""
    y = year
    return {
        "revenue_trend": "SELECT town_id, year, revenue FROM town_year ORDER BY town_id, year",
        "ranking": f"SELECT t.name, e.rank, e.score FROM town_evaluation e JOIN town t ON t.town_id = e.town_id WHERE e.year = {y} ORDER BY e.rank",
        "city_kpis": "SELECT year, entities_end, revenue, towns_total, towns_provincial FROM city_year ORDER BY year",
        "counties": f"SELECT county_code, revenue, entities_end FROM county_year WHERE year = {y} ORDER BY revenue DESC",
        "above_size": f"SELECT town_id, above_size_count, above_size_new FROM town_year WHERE year = {y} ORDER BY above_size_count DESC",
        "patents": "SELECT year, sum(patents_granted) AS granted, sum(invention_granted) AS inventions FROM town_year GROUP BY year ORDER BY year",
        "financing": "SELECT year, sum(loan_total) AS loans, sum(equity_total) AS equity, sum(bond_total) AS bonds FROM town_year GROUP BY year ORDER BY year",
        "employment": f"SELECT town_id, insured_avg, avg_wage FROM town_year WHERE year = {y} ORDER BY insured_avg DESC",
        "yoy": f"SELECT town_id, revenue_yoy, entities_end_yoy FROM town_year_yoy WHERE year = {y} ORDER BY town_id",
        "members": f"SELECT town_id, count(*) AS members, sum(revenue) AS revenue FROM town_member_year WHERE year = {y} GROUP BY town_id ORDER BY town_id",
        "sizes": f"SELECT town_id, four_above_count, size_large, size_medium, size_small, size_micro FROM town_year_structure WHERE year = {y} ORDER BY town_id",
        "clusters": f"SELECT town_id, location_quotient, strong FROM town_cluster WHERE year = {y} ORDER BY town_id",
    }


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(latencies, wall):
    ms = [x * 1000 for x in latencies]
    return {"queries": len(ms), "qps": round(len(ms) / wall, 1),
            "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "p99_ms": round(percentile(ms, 99), 2), "max_ms": round(max(ms), 2)}


def viewer(i, cur, queries):
    """Client `i`'s rounds: every chart ROUNDS times, each round starting at another
    chart; the latency of each statement, from send to the last row decoded."""
    names = list(queries)
    out = []
    for r in range(ROUNDS):
        for k in range(len(names)):
            sql = queries[names[(i + r + k) % len(names)]]
            t = time.perf_counter()
            cur.execute(sql)
            cur.fetchall()
            out.append(time.perf_counter() - t)
    return out


def load(make_cursor, queries):
    """Every client runs every chart ROUNDS times, all clients at once."""
    barrier = threading.Barrier(CLIENTS)

    def client(i):
        cur = make_cursor()
        barrier.wait()
        return viewer(i, cur, queries)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    wall = time.perf_counter() - start
    return summary([x for r in results for x in r], wall)


def client_process(dsn, queries, first, count, ready, go, out):
    """`count` viewers of `load_processes`, clients `first` … `first + count - 1`, in
    this process: connected, then waiting for the start together with the others."""
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(count)]
    ready.release()
    go.wait()
    results = [[] for _ in range(count)]

    def client(t):
        results[t] = viewer(first + t, conns[t].cursor(), queries)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    out.put([x for r in results for x in r])


def load_processes(dsn, queries):
    """The same load as `load`, the CLIENTS viewers spread over PROCESSES client
    processes (a thread per viewer in each): a dashboard's viewers are not one Python
    process, and in one the clients queue for Python's global lock while they decode,
    which is most of the tail once the server answers from its cache."""
    mp = multiprocessing.get_context("fork")
    ready, go, out = mp.Semaphore(0), mp.Event(), mp.Queue()
    share = [CLIENTS // PROCESSES + (1 if p < CLIENTS % PROCESSES else 0) for p in range(PROCESSES)]
    procs = [mp.Process(target=client_process,
                        args=(dsn, queries, sum(share[:p]), share[p], ready, go, out))
             for p in range(PROCESSES)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    latencies = [x for _ in procs for x in out.get()]
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    return summary(latencies, wall)


def first_run(cur, queries):
    first = {}
    for name, sql in queries.items():
        t = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        first[name] = round((time.perf_counter() - t) * 1000, 2)
    return first


def serve(extra):
    env = dict(os.environ, TOWNSTAT_WAREHOUSE=WAREHOUSE, TOWNSTAT_PG_USER="bench",
               TOWNSTAT_PG_PASSWORD=PASSWORD)
    env.pop("RUST_LOG", None)
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0",
                             "--max-connections", str(CLIENTS + 5), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    return proc, int(line.split("127.0.0.1:")[1].split()[0])


def townstat(extra, processes=False):
    proc, port = serve(extra)
    dsn = f"host=127.0.0.1 port={port} user=bench password={PASSWORD} dbname=townstat"
    try:
        conns = []
        lock = threading.Lock()

        def cursor():
            c = psycopg.connect(dsn, autocommit=True)
            with lock:
                conns.append(c)
            return c.cursor()

        with psycopg.connect(dsn, autocommit=True) as c:
            year = c.execute("SELECT max(year) FROM town_evaluation").fetchone()[0]
            queries = charts(year)
            first = first_run(c.cursor(), queries)
        result = load(cursor, queries)
        for c in conns:
            c.close()
        result["first_ms"] = first
        if processes:
            result["processes"] = load_processes(dsn, queries)
        return result, queries
    finally:
        proc.terminate()
        proc.wait()


def pgbench(queries, protocol):
    """The dashboard under pgbench on `townstat serve` (result cache on)."""
    proc, port = serve([])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scripts = []
            for name, sql in queries.items():
                path = Path(tmp) / f"{name}.sql"
                path.write_text(sql + ";\n")
                scripts += ["-f", str(path)]
            env = dict(os.environ, PGPASSWORD=PASSWORD)
            started = time.perf_counter()
            subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "bench", "-n",
                            "-c", str(CLIENTS), "-j", "2", "-t", str(ROUNDS * len(queries)),
                            "-M", protocol, "-l", "--log-prefix", str(Path(tmp) / "log"),
                            *scripts, "townstat"],
                           env=env, check=True, capture_output=True, text=True, cwd=tmp)
            wall = time.perf_counter() - started
            # pgbench's log: one line per statement, its latency in microseconds third.
            latencies = [int(line.split()[2]) / 1e6
                         for log in Path(tmp).glob("log.*") for line in log.read_text().splitlines()]
        # pgbench's own time excludes its connections; ours includes them, so q/s is
        # the lower of the two.
        return summary(latencies, wall)
    finally:
        proc.terminate()
        proc.wait()


def main():
    on, queries = townstat([], processes=True)
    off, _ = townstat(["--result-cache", "0"])
    con = duckdb.connect()
    con.execute("SET threads = 2")
    register(con, Path(WAREHOUSE), TABLES)
    first = first_run(con.cursor(), queries)
    anchor = load(con.cursor, queries)
    anchor["first_ms"] = first
    extra = {}
    if shutil.which("pgbench"):
        for protocol in ("simple", "extended"):
            extra[f"pgbench_{protocol}"] = pgbench(queries, protocol)
    else:
        extra["pgbench"] = "not run: pgbench is not on PATH"
    print(json.dumps({"clients": CLIENTS, "rounds": ROUNDS, "charts": len(queries),
                      "townstat": on, "townstat_nc": off, "duckdb": anchor, **extra,
                      "p99_vs_duckdb": round(on["p99_ms"] / anchor["p99_ms"], 3),
                      "p99_processes_vs_duckdb": round(on["processes"]["p99_ms"] / anchor["p99_ms"], 3),
                      "qps_vs_duckdb": round(on["qps"] / anchor["qps"], 3)}, indent=1))


if __name__ == "__main__":
    main()
