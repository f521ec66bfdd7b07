#!/usr/bin/env python3
"""Each mart step's wall and CPU time in one `townstat run`, read from /proc.

The VM's wall times drift between minutes, so comparing two builds step by step goes
by CPU time: this starts the run, reads the process's user and system time from
/proc/PID/stat each time the JSON log reports a `mart step` (and the phases around
the marts), and prints each step's wall, CPU (user, system) and cores used. Steps
under 50 ms are folded into the next line printed; the last line sums the steps.
Over a warehouse that already holds the run's files, only the marts are built.

usage: bench/step_cpu.py BIN WAREHOUSE PIPELINE [AS_OF]   (AS_OF default 2026-06-30)
e.g., alternating two builds:
  for i in 1 2 3; do python3 bench/step_cpu.py /tmp/old W P; python3 bench/step_cpu.py /tmp/new W P; done
"""
import sys
import time

from townstat_phases import cpu_times, run_log

PHASES = ("source tables committed", "marts built", "marts tested", "run committed")


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    binary, warehouse, pipeline = sys.argv[1:4]
    as_of = sys.argv[4] if len(sys.argv) == 5 else "2026-06-30"
    proc, log = run_log(binary, warehouse, pipeline, as_of)
    last_cpu, last_time = cpu_times(proc.pid), time.time()
    steps_wall = steps_cpu = 0.0
    for fields in log:
        message = fields.get("message")
        step = message == "mart step" and fields.get("elapsed_ms", 0) > 50
        if not step and message not in PHASES:
            continue
        now_cpu, now = cpu_times(proc.pid), time.time()
        user, system = now_cpu[0] - last_cpu[0], now_cpu[1] - last_cpu[1]
        wall = now - last_time
        print(f"{fields.get('step', message):28s} wall {wall:6.2f}  cpu {user + system:6.2f}"
              f" (usr {user:5.2f} sys {system:5.2f})  cores {(user + system) / max(wall, 1e-3):4.2f}")
        if step:
            steps_wall, steps_cpu = steps_wall + wall, steps_cpu + user + system
        last_cpu, last_time = now_cpu, now
    code = proc.wait()
    print(f"{'steps':28s} wall {steps_wall:6.2f}  cpu {steps_cpu:6.2f}")
    sys.exit(code)


if __name__ == "__main__":
    main()
