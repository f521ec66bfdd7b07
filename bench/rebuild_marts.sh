#!/usr/bin/env bash
# Rebuilds the marts of a warehouse that bench/run.sh has loaded, in a fresh process,
# and prints one line: the sum of the mart steps stg_year … city_year (as run.sh counts
# them), the process's wall, user and system time and peak RSS, and the slowest steps.
# A run over the same files loads nothing new, so only the marts are built. For
# comparing settings on one binary, e.g. (the huge-page figures of RESULTS.md):
#   for i in 1 2 3; do bash bench/rebuild_marts.sh 100 now
#     MIMALLOC_ALLOW_THP=1 bash bench/rebuild_marts.sh 100 huge-pages; done
#   usage: bash bench/rebuild_marts.sh SCALE [LABEL]
# Environment: BENCH_DIR (default /tmp/townstat-bench), AS_OF (default 2026-01-15),
# BIN (default $CARGO_TARGET_DIR/release/townstat, CARGO_TARGET_DIR default target/ in the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
scale="$1" label="${2:-}"
work="${BENCH_DIR:-/tmp/townstat-bench}"
bin="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/townstat}"
[ -d "$work/wh-$scale" ] || { echo "no $work/wh-$scale: run bash bench/run.sh $scale first" >&2; exit 2; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$bin" --log-format json --warehouse "$work/wh-$scale" \
  run "$work/pipeline-$scale.toml" --as-of "${AS_OF:-2026-01-15}" 2> "$tmp/log" > /dev/null
python3 - "$tmp" "$label" <<'PY'
import json, sys
sys.path.insert(0, "bench")
from mart_steps import mart_steps
tmp, label = sys.argv[1], sys.argv[2]
steps = [name for _, name in mart_steps()]
ms = {}
for line in open(f"{tmp}/log"):
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if fields.get("message") == "mart step":
        ms[fields["step"]] = fields["elapsed_ms"]
missing = [s for s in steps if s not in ms]
if missing:
    sys.exit(f"no mart step event for {', '.join(missing)}: see the run's log")
wall, user, sys_s, rss = open(f"{tmp}/time").read().split()[-4:]
slowest = sorted(steps, key=lambda s: -ms[s])[:4]
print(f"{label:12s} {len(steps)} steps {sum(ms[s] for s in steps) / 1000:.2f} s | process wall {wall} s,"
      f" user {user} s, sys {sys_s} s, peak RSS {int(rss) // 1024} MiB | "
      + ", ".join(f"{s} {ms[s]} ms" for s in slowest))
PY
