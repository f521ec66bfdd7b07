#!/usr/bin/env bash
# Everything the test command needs besides Rust, made ready once; sourced by
# tests/run.sh (it exports PATH, TOWNSTAT_PYTHON and TOWNSTAT_REQUIRE_DELTA_SCAN).
#
# 1. Debian packages: the server's real clients (psql; pgjdbc with a JDK for the
#    single-file JDBC check; psqlODBC with unixODBC), a real PostgreSQL server (the
#    date functions are compared with its answers), openssl for a test certificate,
#    GNU time for the benchmark harness, tmux (the shell is driven through it),
#    systemd-analyze (the deploy/ units are verified); LibreOffice, Chromium, poppler and CJK fonts for the yearly
#    report. Installed when missing if this runs as root; otherwise the exact apt-get
#    line is printed and the tests stop.
# 2. Python: a virtual environment under the target dir with every package the
#    outside readers, the PostgreSQL clients, the report check and the benchmark peers
#    import (tests/python/requirements.txt, bench/requirements.txt) — nothing is
#    installed system-wide — and a second one with DuckDB's Delta reader
#    (tests/python/requirements-delta-scan.txt), whose DuckDB version differs.

missing() {
  local out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || out+=("$p")
  done
  echo "${out[@]}"
}

install_debs() {
  # "$1": extra apt-get flags; the rest: packages.
  local flags=$1
  shift
  local need
  need=$(missing "$@")
  [ -z "$need" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: $need" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $flags $need > /dev/null
  else
    echo "the tests need these Debian packages; install them, then run the tests again:" >&2
    echo "  sudo apt-get install $flags $need" >&2
    exit 1
  fi
}

install_debs "" postgresql-client openssl default-jdk-headless libpostgresql-jdbc-java time \
  postgresql unixodbc odbc-postgresql tmux systemd
install_debs "--no-install-recommends" libreoffice-calc-nogui chromium poppler-utils fonts-noto-cjk

venv() {
  # "$1": the folder; the rest: requirement files. Made, or brought up to date, only
  # when the requirement files changed since it was last filled.
  local dir=$1
  shift
  local stamp
  stamp=$(cat "$@" | sha256sum | cut -c1-16)
  if [ "$(cat "$dir/.townstat-requirements" 2> /dev/null)" != "$stamp" ]; then
    echo "making the Python environment $dir" >&2
    python3 -m venv "$dir"
    local args=()
    for r in "$@"; do args+=(-r "$r"); done
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
    echo "$stamp" > "$dir/.townstat-requirements"
  fi
}

tests_venv="${TOWNSTAT_TEST_VENV:-$CARGO_TARGET_DIR/python-tests}"
venv "$tests_venv" tests/python/requirements.txt bench/requirements.txt
delta_venv="${TOWNSTAT_DELTA_VENV:-$CARGO_TARGET_DIR/python-delta-scan}"
venv "$delta_venv" tests/python/requirements-delta-scan.txt

# `python3` in the tests and the harness is the environment's.
export PATH="$tests_venv/bin:$PATH"
export TOWNSTAT_PYTHON="$delta_venv/bin/python" TOWNSTAT_REQUIRE_DELTA_SCAN=1
