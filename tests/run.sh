#!/usr/bin/env bash
# The test command of the README: every Rust test (unit, integration, CLI end to end,
# the bad-input corpus), then the outside readers that read the warehouse the CLI
# wrote with no townstat code at all. It gets what it needs itself (tests/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# An S3-compatible server that stores real bytes on disk (s3s-fs, from crates.io), for
# the object-store and cluster test at the end. Built once into the target dir.
s3s="$CARGO_TARGET_DIR/tools/bin/s3s-fs"
if [ ! -x "$s3s" ]; then
  cargo install --locked --quiet --root "$CARGO_TARGET_DIR/tools" s3s-fs --version 0.14.1 \
    --features binary
fi

# Debian packages and the Python environments the tests need (tests/setup.sh): made
# once, installed when missing (as root) or named exactly (otherwise).
# shellcheck source=tests/setup.sh
source tests/setup.sh

cargo test --workspace

# Build a warehouse from the corpus and the bundled sample with the real binary,
# then read it back from Python (deltalake + DuckDB).
cargo build --quiet -p townstat-cli
bin="$CARGO_TARGET_DIR/debug/townstat"
# The systemd units of deploy/ (nightly run, weekly maintenance, the server) through
# systemd-analyze verify, pointed at the built binary.
bash tests/deploy_check.sh "$bin"
# A newcomer's first hour: the README's demo in a fresh clone, and the binary installed
# with `cargo install` run from an empty folder outside it, print the same town table.
bash tests/newcomer.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
set +e
"$bin" --warehouse "$work/wh" run pipelines/nightly.toml --as-of 2026-01-15 > "$work/run.txt"
code=$?
set -e
if [ "$code" -ne 0 ]; then
  echo "the nightly pipeline on the sample data exited $code:"; cat "$work/run.txt"; exit 1
fi
# An independent engine on the same files and SQL: DuckDB must get the same marts.
python3 bench/marts_vs_duckdb.py "$work/wh" 2026
python3 tests/python/readback.py "$work/wh" "$bin"
# The yearly report: openpyxl against hand-computed figures of the slt dataset,
# LibreOffice and Chromium (headless) opening, printing and rendering it, its figures
# against townstat sql's on the sample warehouse.
python3 tests/python/report_check.py "$bin" "$work/wh"
# The data catalog (`townstat docs`) in Chromium: every table, lineage against the SQL
# files read independently, test results, search, no network request.
python3 tests/python/docs_check.py "$work/wh" "$bin"
# The benchmark harness at a tiny scale, to prove it still works (timings of a debug
# build mean nothing; STRICT=1 fails if DuckDB's or Polars' ingest, DuckDB's marts or
# an ad-hoc answer differ from townstat's). Its data goes to its own temporary folder.
SKIP_PIP=1 STRICT=1 PROFILE=debug BENCH_DIR="$work/bench" bash bench/run.sh 0.05 > "$work/bench.txt" \
  || { cat "$work/bench.txt"; exit 1; }
python3 bench/edge_cases.py --townstat "$bin" > "$work/edge.txt" || { cat "$work/edge.txt"; exit 1; }
# The interactive shell typed into through tmux and read off the screen: typo
# suggestions, SQL types, \x, the pager, Ctrl-C cancelling a statement, history.
python3 tests/python/shell_tmux.py "$work/wh" "$bin"
# to_char / to_date / to_timestamp with PostgreSQL's patterns, against a real
# PostgreSQL (a throwaway cluster on a Unix socket).
python3 tests/python/pg_dates.py "$work/wh" "$bin"
# The server through psqlODBC (pyodbc): catalog calls, parameters, types, the
# driver's DEALLOCATE / DISCARD / SET search_path.
python3 tests/python/odbc_check.py "$work/wh" "$bin"
# Apache Superset 6 against `townstat serve` (its own environment, made once by
# tests/superset/install.sh): tables, datasets with the labels, chart data with time
# ranges, SQL Lab, figures against townstat sql's.
superset_python=$(bash tests/superset/install.sh)
"$superset_python" tests/python/superset_check.py "$bin" "$work/wh"
# The PostgreSQL-protocol server through psql, psycopg and SQLAlchemy (this one
# commits one more run into the warehouse, so it goes last).
python3 tests/python/serve_clients.py "$work/wh" "$bin"
# The warehouse on S3 (s3s-fs) and the marts on a Ballista cluster (a scheduler and two
# executors, all separate processes on 127.0.0.1), compared cell for cell with a local
# build; then one executor killed during a cluster run.
python3 tests/python/cluster.py "$bin" "$s3s"
