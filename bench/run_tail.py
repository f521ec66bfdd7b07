#!/usr/bin/env python3
"""One `townstat run` timed by phase, the tail after the mart tests included: the whole
process's wall, the mart steps' sum, the tests, the Delta writes and commit ("marts
tested" → "run committed"), what follows the commit (report, exports, link) and the
child's CPU and peak RSS (getrusage). Over a warehouse that already holds the run's
files, only the marts are rebuilt, tested, committed and exported.

usage: bench/run_tail.py BIN WAREHOUSE PIPELINE [AS_OF]   (AS_OF default 2026-06-30)
e.g., alternating two builds:
  for i in 1 2 3; do python3 bench/run_tail.py /tmp/old W P; python3 bench/run_tail.py /tmp/new W P; done
"""
import resource
import sys
import time

from townstat_phases import run_log

PHASES = ("marts built", "marts tested", "run committed")


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    binary, warehouse, pipeline = sys.argv[1:4]
    as_of = sys.argv[4] if len(sys.argv) == 5 else "2026-06-30"
    start = time.time()
    proc, log = run_log(binary, warehouse, pipeline, as_of)
    at, steps = {}, 0.0
    for fields in log:
        message = fields.get("message")
        if message == "mart step":
            steps += fields.get("elapsed_ms", 0) / 1000
        if message in PHASES:
            at[message] = time.time() - start
    code = proc.wait()
    end = time.time() - start
    if code != 0 or any(p not in at for p in PHASES):
        sys.exit(f"{binary}: exit {code}, phases seen: {sorted(at)}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{binary}: wall {end:.2f} s, steps {steps:.2f}, tests {at['marts tested'] - at['marts built']:.2f}, "
          f"commit {at['run committed'] - at['marts tested']:.2f}, after the commit {end - at['run committed']:.2f}, "
          f"tests' end to exit {end - at['marts tested']:.2f}, CPU {usage.ru_utime + usage.ru_stime:.2f} s, "
          f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
