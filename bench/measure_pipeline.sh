#!/usr/bin/env bash
# Measures one nightly run of townstat (release build) on generated data at the given
# scales: wall time of ingest, of the source-table commits and of the mart build (from
# the run's JSON log), total wall time and peak memory (GNU time). Not a comparison
# with peers (that is the benchmark issue); the figures in docs/measurements.md come
# from this script.
#   usage: bench/measure_pipeline.sh [SCALE ...]      (default: 1 10)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet --release -p townstat-cli
bin="$CARGO_TARGET_DIR/release/townstat"
work="${BENCH_DIR:-/tmp/townstat-bench}"
mkdir -p "$work"
scales=("$@"); [ ${#scales[@]} -gt 0 ] || scales=(1 10)
printf '%-6s %10s %12s %10s %10s %10s %10s\n' scale rows ingest_s commit_s marts_s total_s peak_MiB
for s in "${scales[@]}"; do
  data="$work/data-$s"
  [ -f "$data/towns.csv" ] || "$bin" generate --out "$data" --scale "$s" --seed 1 > /dev/null
  pipeline="$work/pipeline-$s.toml"
  bash bench/pipeline_toml.sh "$data" > "$pipeline"
  rm -rf "$work/wh-$s"
  /usr/bin/time -v "$bin" --warehouse "$work/wh-$s" --log-format json run "$pipeline" --as-of 2026-01-15 \
    > "$work/out-$s.txt" 2> "$work/log-$s.txt"
  python3 - "$work/log-$s.txt" "$s" <<'PY'
import json, re, sys
log, scale = sys.argv[1], sys.argv[2]
ev = {}
rows = 0
peak = wall = None
for line in open(log):
    if line.startswith("{"):
        e = json.loads(line)["fields"]
        if "elapsed_ms" in e:
            ev[e["message"]] = e["elapsed_ms"] / 1000
        if e.get("message") == "file":
            rows += e["read"]
    elif "Maximum resident set size" in line:
        peak = int(line.split(":")[1]) / 1024
    elif "Elapsed (wall clock)" in line:
        t = line.split("):")[1].strip().split(":")
        wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(t)))
print(f"{scale:<6} {rows:>10} {ev.get('ingested', 0):>12.2f} {ev.get('source tables committed', 0):>10.2f} "
      f"{ev.get('marts built', 0):>10.2f} {wall:>10.2f} {peak:>10.0f}")
PY
done
