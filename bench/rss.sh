#!/usr/bin/env bash
# Runs a command and samples its resident memory (VmRSS) every 0.2 s.
# usage: bench/rss.sh OUT -- COMMAND...
# Writes OUT.rss ("seconds-since-start KiB" per line), OUT.log (the command's stderr)
# and OUT.stdout; prints the exit status and the largest sample. With
# `townstat run … --log-format json`, bench/run_phases.py OUT splits them by phase.
set -u
out=$1
shift 2
"$@" > "$out.stdout" 2> "$out.log" &
pid=$!
start=$(date +%s.%N)
: > "$out.rss"
while kill -0 "$pid" 2> /dev/null; do
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2> /dev/null)
  now=$(date +%s.%N)
  [ -n "$rss" ] && echo "$(echo "$now - $start" | bc) $rss" >> "$out.rss"
  sleep 0.2
done
wait "$pid"
echo "exit $?"
sort -k2 -n "$out.rss" | tail -1
