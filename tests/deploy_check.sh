#!/usr/bin/env bash
# Checks the systemd units in deploy/ with `systemd-analyze verify` (the systemd
# package; no running systemd needed, works as root in a container).
#
#   bash tests/deploy_check.sh PATH/TO/townstat
#
# verify checks that every ExecStart= binary exists and is executable, so the units
# are copied into a temporary folder with /usr/local/bin/townstat rewritten to the
# binary given; nothing else is changed. User=townstat is left as it is: verify does
# not resolve users (systemd 252, run as root here: it reports nothing for a User= that
# does not exist; the user is looked up only when a service starts).
#
# What counts as a failure, and why two runs of verify (systemd 252, measured):
# - Without --recursive-errors, verify exits 0 on mere warnings: an unknown key
#   (`ExecStrat=` next to a valid ExecStart=) or a value it cannot parse is printed and
#   ignored. With --recursive-errors=yes it fails on a warning in any unit it loads,
#   also the distribution's units that network-online.target and timers.target pull
#   in, which we do not own (a drop-in making network-online.target want a unit with
#   an obsolete setting: yes exited 1; no, one and the default exited 0). With
#   --recursive-errors=no it exits non-zero exactly when a unit given to it (ours) has
#   a warning or an error: unknown key, unparsable value, missing or non-executable
#   binary, a unit it refuses. That exit status decides.
# - `--recursive-errors=no` does not build the start job, so a dependency that cannot
#   be satisfied (Requires= on a unit that does not exist) goes unnoticed there: no
#   output, exit 0. The default mode reports it ("townstat-maintain.service: Failed to
#   create townstat-maintain.service/start: Unit … not found.", exit 1), so verify
#   runs a second time in that mode. From both runs, a line that names one of our
#   units (its file in the temporary folder, or its unit name) is a failure; any other
#   line is about a unit we do not own and is shown as ignored. A non-zero exit status
#   of the second run is excused only when it printed lines and every one is foreign.
# - verify does not check that a timer's unit exists (a timer without its service
#   passes), so that is checked here: Unit=, or the service of the timer's name, must
#   be a file in deploy/.
# DEPLOY_DIR (default deploy) checks another folder of units, e.g. a broken copy.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "deploy_check: $*" >&2
  exit 1
}

[ $# -eq 1 ] || fail "usage: tests/deploy_check.sh PATH/TO/townstat"
bin=$(realpath "$1")
[ -x "$bin" ] || fail "$1: not an executable"
command -v systemd-analyze > /dev/null || fail "systemd-analyze not found (Debian package systemd)"
deploy=${DEPLOY_DIR:-deploy}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
units_dir="$work/units"
mkdir "$units_dir"

shopt -s nullglob
units=()
names=()
for f in "$deploy"/*.service "$deploy"/*.timer; do
  name=$(basename "$f")
  text=$(< "$f")
  printf '%s\n' "${text//\/usr\/local\/bin\/townstat/$bin}" > "$units_dir/$name"
  units+=("$units_dir/$name")
  names+=("$name")
done
[ ${#units[@]} -gt 0 ] || fail "no .service or .timer in $deploy/"

# A timer's unit must be one of ours.
for f in "$deploy"/*.timer; do
  target=$(sed -n 's/^Unit=//p' "$f" | tail -n 1)
  target=${target:-$(basename "$f" .timer).service}
  [ -f "$deploy/$target" ] || fail "$f starts $target, which is not in $deploy/"
done

# A line is about our units when it names a file in the temporary folder or one of
# our unit names (townstat-maintain.service naming townstat-nightly.service included).
ours() {
  local line=$1 name
  [[ $line == *"$units_dir/"* ]] && return 0
  for name in "${names[@]}"; do
    [[ $line == *"$name"* ]] && return 0
  done
  return 1
}

problems=0
# --man=no: Documentation=man:… pages need not be installed on the test machine.
set +e
systemd-analyze verify --man=no --recursive-errors=no "${units[@]}" > "$work/own.txt" 2>&1
own=$?
systemd-analyze verify --man=no "${units[@]}" > "$work/all.txt" 2>&1
all=$?
set -e

if [ "$own" -ne 0 ]; then
  echo "deploy_check: systemd-analyze verify --recursive-errors=no exited $own:" >&2
  problems=1
fi
foreign=0
while IFS= read -r line; do
  if ours "$line"; then
    echo "deploy_check: $line" >&2
    problems=1
  else
    echo "deploy_check: ignored (not about the units of $deploy/): $line" >&2
    foreign=$((foreign + 1))
  fi
done < <(sort -u "$work/own.txt" "$work/all.txt")
if [ "$all" -ne 0 ] && [ "$problems" -eq 0 ] && [ "$foreign" -eq 0 ]; then
  echo "deploy_check: systemd-analyze verify exited $all without saying why" >&2
  problems=1
fi
[ "$problems" -eq 0 ] || fail "systemd-analyze verify found problems in $deploy/"

# serve.env.example is read by systemd (EnvironmentFile=): KEY=VALUE lines only.
if [ -f "$deploy/serve.env.example" ]; then
  bad=$(grep -nvE '^[[:space:]]*(#.*)?$|^[A-Za-z_][A-Za-z0-9_]*=' "$deploy/serve.env.example" || true)
  [ -z "$bad" ] || fail "$deploy/serve.env.example: not KEY=VALUE: $bad"
fi

echo "deploy_check: ${names[*]}: systemd-analyze verify ok ($(systemd-analyze --version | head -n 1))"
