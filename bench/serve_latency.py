#!/usr/bin/env python3
"""Latency of `townstat serve` under concurrent PostgreSQL clients (psycopg 3).

    usage: serve_latency.py WAREHOUSE [TOWNSTAT_BINARY] [CLIENTS] [ROUNDS]

Starts the server on a free loopback port, opens CLIENTS connections (default 50),
and has each run ROUNDS rounds (default 20) of two queries:
  small      one town's row of one year from town_year (a point lookup);
  town_year  the whole town mart for the last year, ordered (what a dashboard asks).
Each query's time is measured in the client, from send to last row decoded, so it
includes psycopg's Python-side decoding. Prints p50/p95/p99/max per query for one
client alone and for all clients at once, as a markdown table. Nothing is asserted:
this is a measurement (bench/README.md).
"""

import concurrent.futures
import os
import statistics
import subprocess
import sys
import threading
import time

import psycopg

WAREHOUSE = sys.argv[1]
BIN = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")), "release", "townstat")
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 50
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
PASSWORD = "bench-only-password"


def start():
    env = dict(os.environ, TOWNSTAT_WAREHOUSE=WAREHOUSE, TOWNSTAT_PG_USER="bench",
               TOWNSTAT_PG_PASSWORD=PASSWORD)
    env.pop("RUST_LOG", None)
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0",
                             "--max-connections", str(CLIENTS + 5)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return proc, port


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main():
    proc, port = start()
    dsn = f"host=127.0.0.1 port={port} user=bench password={PASSWORD} dbname=townstat"
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            year, town = c.execute(
                "SELECT max(year), min(town_id) FROM town_year").fetchone()
        queries = {
            "small": ("SELECT * FROM town_year WHERE town_id = %s AND year = %s", (town, year)),
            "town_year": ("SELECT * FROM town_year WHERE year = %s ORDER BY town_id", (year,)),
        }

        def client(n_rounds, barrier=None):
            times = {k: [] for k in queries}
            with psycopg.connect(dsn, autocommit=True) as c:
                if barrier:
                    barrier.wait()
                for _ in range(n_rounds):
                    for name, (sql, params) in queries.items():
                        t = time.perf_counter()
                        c.execute(sql, params).fetchall()
                        times[name].append(time.perf_counter() - t)
            return times

        client(3)  # warm the server's caches
        alone = client(ROUNDS * 5)
        barrier = threading.Barrier(CLIENTS)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(lambda _: client(ROUNDS, barrier), range(CLIENTS)))
        wall = time.perf_counter() - started
        together = {k: [t for r in results for t in r[k]] for k in queries}

        print(f"townstat serve latency: {CLIENTS} clients x {ROUNDS} rounds, warehouse {WAREHOUSE}")
        print("| query | clients | queries | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|")
        for label, data, n in (("1", alone, 1), (str(CLIENTS), together, CLIENTS)):
            for name, values in data.items():
                ms = [v * 1000 for v in values]
                print(f"| {name} | {label} | {len(ms)} | {statistics.median(ms):.1f} | "
                      f"{percentile(ms, 95):.1f} | {percentile(ms, 99):.1f} | {max(ms):.1f} |")
        total = sum(len(v) for v in together.values())
        print(f"\n{CLIENTS} clients: {total} queries in {wall:.2f} s ({total / wall:.0f} queries/s)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
