#!/usr/bin/env bash
# The mart rebuild on a Ballista cluster, one executor against two, over a warehouse
# in S3-compatible storage (s3s-fs on 127.0.0.1), at one scale. Everything runs on
# this machine: the S3 server, the scheduler, the executors and the client share its
# cores, so the figures are a floor for what separate machines would do.
#
#   usage: bash bench/cluster.sh [SCALE] [REPEATS]     (default: 10 and 3)
#
# Steps: generate the data (`townstat generate`, kept in BENCH_DIR), ingest it into
# s3://bench/wh-SCALE with the local engine (one run, marts built in-process), then
# rebuild the marts REPEATS times each: in-process against the S3 warehouse, on a
# cluster of one executor, and on a cluster of two. Each executor runs one task at a
# time with a 4 GiB pool, so two executors have twice the task slots of one. A
# rebuild is `townstat run` with no new files: it skips every file it already loaded
# and rebuilds the marts; the time reported is the run's own "marts built" figure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scale="${1:-10}"
repeats="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bench="${BENCH_DIR:-/tmp/townstat-bench}"
mkdir -p "$bench"
cargo build --release --quiet -p townstat-cli
bin="$CARGO_TARGET_DIR/release/townstat"
s3s="$CARGO_TARGET_DIR/tools/bin/s3s-fs"
[ -x "$s3s" ] || cargo install --locked --quiet --root "$CARGO_TARGET_DIR/tools" s3s-fs \
  --version 0.14.1 --features binary

data="$bench/data-$scale"
[ -d "$data" ] || "$bin" generate --out "$data" --scale "$scale" > /dev/null
bash "$root/bench/pipeline_toml.sh" "$data" > "$bench/pipeline-$scale.toml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do (echo > "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

s3_port="$(free_port)"
mkdir -p "$work/s3/bench"
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
"$s3s" --host 127.0.0.1 --port "$s3_port" --access-key bench --secret-key bench-secret \
  "$work/s3" > "$work/s3.log" 2>&1 &
pids+=($!)
wait_port "$s3_port"
wh="s3://bench/wh-$scale"

# The "marts built" time of one run, in seconds.
marts_time() {
  "$bin" --log-format json --warehouse "$wh" run "$bench/pipeline-$scale.toml" --as-of 2026-01-15 "$@" \
    2> "$work/run.log" > /dev/null || { code=$?; [ "$code" -eq 3 ] || { tail -5 "$work/run.log" >&2; exit 1; }; }
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    f = e.get("fields", {})
    if f.get("message") == "marts built": print(f["elapsed_ms"] / 1000)
' "$work/run.log"
}

start_cluster() {
  sched="$(free_port)"
  "$bin" scheduler --listen "127.0.0.1:$sched" > "$work/scheduler.log" 2>&1 &
  pids+=($!); cluster_pids=($!)
  wait_port "$sched"
  for i in $(seq 1 "$1"); do
    port="$(free_port)"
    "$bin" executor --scheduler "127.0.0.1:$sched" --listen "127.0.0.1:$port" --tasks 1 \
      --memory 4GiB --work-dir "$work/executor-$i" > "$work/executor-$i.log" 2>&1 &
    pids+=($!); cluster_pids+=($!)
    wait_port "$port"
  done
  sleep 1
}
stop_cluster() { kill "${cluster_pids[@]}" 2> /dev/null || true; wait "${cluster_pids[@]}" 2> /dev/null || true; }

echo "ingesting scale $scale into $wh ... (cluster partitions per stage: ${TOWNSTAT_CLUSTER_PARTITIONS:-4})"
first="$(marts_time)"
echo "scale $scale: first run (ingest + marts in-process) marts built in ${first} s"
printf '| marts rebuilt | runs (s) | median (s) |\n|---|---|---|\n'
report() {
  python3 -c '
import statistics, sys
v = [float(x) for x in sys.argv[2:]]
runs = " ".join("%.2f" % x for x in v)
print("| %s | %s | %.2f |" % (sys.argv[1], runs, statistics.median(v)))' "$@"
}
times=(); for _ in $(seq 1 "$repeats"); do times+=("$(marts_time)"); done
report "in-process (no cluster)" "${times[@]}"
for n in 1 2; do
  start_cluster "$n"
  times=(); for _ in $(seq 1 "$repeats"); do times+=("$(marts_time --cluster "df://127.0.0.1:$sched")"); done
  report "cluster, $n executor(s) × 1 task" "${times[@]}"
  stop_cluster
done
