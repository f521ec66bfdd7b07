#!/usr/bin/env bash
# A newcomer's first hour: the README's first command on a fresh clone of this
# repository, and the binary installed with `cargo install` and started from an empty
# folder outside any clone. Both must print the same town table, and the installed one
# must leave a complete example project in ./townstat-demo/.
#
# With TOWNSTAT_COLD_NEWCOMER=1 (as `.ci/run` sets it) the clone builds as a new user's
# would: CARGO_TARGET_DIR unset, cargo's default target/ of the fresh clone, empty, so
# the demo pays the whole cold build (printed; README gives the measured figure).
# Otherwise it uses the test command's CARGO_TARGET_DIR, already built.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "newcomer: $*"; exit 1; }

git clone -q "$repo" "$work/clone"
if [ "${TOWNSTAT_COLD_NEWCOMER:-0}" = 1 ]; then
  unset CARGO_TARGET_DIR
fi

# The README's first command, in the fresh clone.
started=$(date +%s)
(cd "$work/clone" && cargo run -q -p townstat-cli -- demo) > "$work/clone.txt" 2> "$work/clone.err" \
  || { cat "$work/clone.err"; fail "cargo run -p townstat-cli -- demo failed in a fresh clone"; }
echo "newcomer: cargo run -p townstat-cli -- demo in a fresh clone took $(( $(date +%s) - started )) s" \
  "($([ -n "${CARGO_TARGET_DIR:-}" ] && echo "target dir $CARGO_TARGET_DIR" || echo "cold: the clone's own empty target/"))"

# The installed binary, from an empty folder outside the clone (built in the same
# target dir as the demo above, so not compiled twice).
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/clone/target}" \
  cargo install -q --locked --debug --path "$work/clone/crates/cli" --root "$work/inst" 2> "$work/install.err" \
  || { cat "$work/install.err"; fail "cargo install failed"; }
mkdir "$work/elsewhere"
(cd "$work/elsewhere" && "$work/inst/bin/townstat" demo) > "$work/installed.txt" 2> "$work/installed.err" \
  || { cat "$work/installed.err"; fail "the installed binary's demo failed outside the clone"; }
for f in pipelines/nightly.toml pipelines/enums.toml pipelines/evaluation.toml \
         pipelines/targets.toml sample-data/raw/towns.csv; do
  [ -f "$work/elsewhere/townstat-demo/$f" ] || fail "the demo project lacks $f"
done
[ -d "$work/elsewhere/townstat-demo/warehouse/tables/town_year" ] || fail "the demo project has no warehouse"
[ "$(ls -A "$work/elsewhere")" = "townstat-demo" ] || fail "the demo wrote outside ./townstat-demo: $(ls -A "$work/elsewhere")"

# The town table: the rows between the header rule and the closing rule, one per town.
towns() { awk '/^\| 专业镇 /{on=1; next} on && /^\+/{n++; if (n==2) exit; next} on && /^\|/{print}' "$1"; }
towns "$work/clone.txt" > "$work/clone.towns"
towns "$work/installed.txt" > "$work/installed.towns"
rows=$(wc -l < "$work/clone.towns")
[ "$rows" -eq 10 ] || { cat "$work/clone.txt"; fail "the clone's demo printed $rows towns, not the plan's 10"; }
grep -q "平城轨道交通专业镇" "$work/clone.towns" || fail "no 平城轨道交通专业镇 in the town table"
cmp -s "$work/clone.towns" "$work/installed.towns" \
  || { diff "$work/clone.towns" "$work/installed.towns"; fail "the installed binary's town table differs from the clone's"; }
grep -q "tests of the marts: .* passed" "$work/installed.txt" || fail "the demo's marts were not tested"
echo "newcomer: the README's demo in a fresh clone and the installed binary outside it print the same 10 towns"
