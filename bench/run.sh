#!/usr/bin/env bash
# The benchmark of issue 6, in one command: for each scale, townstat against DuckDB and
# Polars on the same generated data, in the same run:
#   ingest   raw files → validated tables: townstat `run` vs ingest_peers.py (DuckDB, Polars)
#   marts    town_year … city_year: townstat's mart steps vs marts_vs_duckdb.py (DuckDB)
#   ad-hoc   five statistician queries (one town by year, its top 20, patents by county,
#            a county-by-industry pivot, a year-over-year join): `townstat sql` vs DuckDB
#            (adhoc.py)
# Every process runs under GNU time (wall, user+sys CPU, peak RSS); the peers' results
# are checked against townstat's (counts, rows, answers). Prints markdown tables.
#
#   usage: bash bench/run.sh [SCALE ...]          default: 1 10   (the issue: 1 10 100)
#   CI:    STRICT=1 PROFILE=debug bash bench/run.sh 0.05   (proves the harness works;
#          tests/run.sh runs it with the debug build, whose timings mean nothing)
#
# Environment: BENCH_DIR (default /tmp/townstat-bench; data-S is reused, it is
# deterministic), AS_OF (run date, default 2026-01-15), THREADS (DuckDB and Polars
# threads, default 2), REPEAT (ad-hoc repetitions, default 5), CARGO_TARGET_DIR
# (default target/ in the clone), SKIP_PIP=1 to use the Python packages already installed,
# STRICT=1 to exit 1 when a peer's result differs from townstat's (CI), PROFILE=debug
# to use the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
work="${BENCH_DIR:-/tmp/townstat-bench}"
as_of="${AS_OF:-2026-01-15}"
threads="${THREADS:-2}"
repeat="${REPEAT:-5}"
scales=("$@"); [ ${#scales[@]} -gt 0 ] || scales=(1 10)
mkdir -p "$work"
failed=()  # checks whose results differ (reported in the tables either way)

# Tools: GNU time, the peers from PyPI, the release binary.
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (Debian package 'time')" >&2
  apt-get install -y -qq time > /dev/null
fi
if [ "${SKIP_PIP:-}" != 1 ]; then
  python3 -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt 2>&1 \
    | grep -v "Running pip as the 'root' user" >&2 || true
fi
# PROFILE=debug (CI's tiny-scale run) reuses the test build; figures need release.
profile="${PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --quiet --release -p townstat-cli
else
  cargo build --quiet -p townstat-cli
fi
bin="$CARGO_TARGET_DIR/$profile/townstat"

for s in "${scales[@]}"; do
  data="$work/data-$s" wh="$work/wh-$s" res="$work/results-$s"
  rm -rf "$res" "$wh"; mkdir -p "$res"
  [ -f "$data/towns.csv" ] || "$bin" generate --out "$data" --scale "$s" --seed 1 > /dev/null
  pipeline="$work/pipeline-$s.toml"
  bash bench/pipeline_toml.sh "$data" > "$pipeline"
  echo "scale $s: townstat run" >&2
  status=0
  python3 bench/townstat_phases.py "$res/townstat_run.time" "$res/townstat_run.log" -- \
    "$bin" --warehouse "$wh" --log-format json run "$pipeline" --as-of "$as_of" > "$res/townstat_run.json" || status=$?
  if [ "$status" != 0 ] && [ "$status" != 3 ]; then  # 3: finished, some files rejected whole
    echo "townstat run failed (exit $status); see $res/townstat_run.log" >&2
    exit 1
  fi

  for engine in duckdb polars; do
    echo "scale $s: $engine ingest" >&2
    # A failure or a difference is reported in the tables, not a reason to stop.
    if /usr/bin/time -v -o "$res/${engine}_ingest.time" python3 bench/ingest_peers.py run "$engine" "$data" \
        "$work/peer-$engine-$s" --as-of "$as_of" --threads "$threads" > /dev/null 2> "$res/${engine}_ingest.err"; then
      cp "$work/peer-$engine-$s/summary.json" "$res/${engine}_ingest.json"
      python3 bench/ingest_peers.py compare "$work/peer-$engine-$s" "$wh" > "$res/${engine}_compare.json" \
        || failed+=("scale $s: $engine ingest differs from townstat")
    else
      failed+=("scale $s: $engine ingest failed (see $res/${engine}_ingest.err)")
    fi
  done

  echo "scale $s: marts (DuckDB)" >&2
  /usr/bin/time -v -o "$res/duckdb_marts.time" python3 bench/marts_vs_duckdb.py "$wh" "${as_of:0:4}" "$threads" \
    > "$res/duckdb_marts.json" || failed+=("scale $s: DuckDB marts differ from townstat")

  echo "scale $s: ad-hoc queries" >&2
  python3 bench/adhoc.py "$wh" --townstat "$bin" --repeat "$repeat" --threads "$threads" > "$res/adhoc.json" \
    || failed+=("scale $s: ad-hoc answers differ")
  for q in $(python3 -c 'import sys; sys.path.insert(0, "bench"); import adhoc; print(*adhoc.QUERIES)'); do
    /usr/bin/time -v -o "$res/townstat_sql_$q.time" "$bin" --warehouse "$wh" sql "$(python3 bench/adhoc.py "$wh" --sql "$q")" \
      --format csv > /dev/null
    /usr/bin/time -v -o "$res/duckdb_sql_$q.time" python3 bench/adhoc.py "$wh" --duckdb-only "$q" \
      --threads "$threads" > /dev/null
  done
done

python3 bench/report.py "$work" "${scales[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'DIFFERENCE: %s\n' "${failed[@]}" >&2
  [ "${STRICT:-}" != 1 ] || exit 1
fi
