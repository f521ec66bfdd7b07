#!/usr/bin/env bash
# Apache Superset (tests/superset/requirements.txt) in its own virtual environment,
# for tests/python/superset_check.py. Made, or brought up to date, only when the
# requirements changed since it was last filled (a stamp of their hash, like venv() in
# tests/setup.sh); prints the environment's python on stdout, how long it took on
# stderr.
#
#   usage: tests/superset/install.sh
#   where: "${TOWNSTAT_SUPERSET_VENV:-$CARGO_TARGET_DIR/superset}"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${TOWNSTAT_SUPERSET_VENV:-${CARGO_TARGET_DIR:?CARGO_TARGET_DIR must be set}/superset}"
req="$here/requirements.txt"
stamp=$(sha256sum < "$req" | cut -c1-16)
if [ "$(cat "$dir/.townstat-requirements" 2> /dev/null)" != "$stamp" ]; then
  started=$SECONDS
  echo "making the Superset environment $dir" >&2
  python3 -m venv --clear "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  # Superset starts only when its whole stack fits; fail here, not in the check. A
  # throwaway config: Superset refuses to start without a SECRET_KEY of its own.
  smoke=$(mktemp -d)
  echo "SECRET_KEY = '$(head -c 32 /dev/urandom | base64)'" > "$smoke/superset_config.py"
  if ! SUPERSET_CONFIG_PATH="$smoke/superset_config.py" SUPERSET_HOME="$smoke" \
    "$dir/bin/superset" version > "$smoke/log" 2>&1 \
    || ! "$dir/bin/python" -c "import psycopg2, requests" >> "$smoke/log" 2>&1; then
    tail -20 "$smoke/log" >&2
    rm -rf "$smoke"
    echo "the Superset environment $dir does not start: $dir/bin/superset version" >&2
    exit 1
  fi
  rm -rf "$smoke"
  echo "$stamp" > "$dir/.townstat-requirements"
  echo "Superset environment made in $((SECONDS - started)) s" >&2
fi
echo "$dir/bin/python"
