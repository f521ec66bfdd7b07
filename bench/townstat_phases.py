#!/usr/bin/env python3
"""Runs one `townstat … --log-format json run …` under GNU time and splits its cost by
phase. GNU time (`/usr/bin/time -v`, written to TIME_FILE) gives the whole process;
for the phases, the JSON log's events give wall times (`ingested`, `source tables
committed`, each `mart step`, `marts built`), and at each event this script samples
the townstat process's CPU time (utime + stime, /proc/PID/stat) and its peak resident
memory so far (VmHWM, /proc/PID/status). A sample is taken when the event line is
read, a few milliseconds after townstat wrote it.

usage: townstat_phases.py TIME_FILE LOG_FILE -- TOWNSTAT_COMMAND...
Prints a JSON object: the phase events with their samples; exit status: townstat's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def child_of(pid: int, timeout: float = 5.0) -> int | None:
    """The (only) child of a process: townstat under /usr/bin/time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            return None
        time.sleep(0.001)
    return None


def run_log(binary: str, warehouse: str, pipeline: str, as_of: str):
    """Starts `townstat run` with a JSON log; the process and its log lines' fields."""
    proc = subprocess.Popen(
        [binary, "--log-format", "json", "--warehouse", warehouse, "run", pipeline, "--as-of", as_of],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )

    def fields():
        for line in proc.stderr:
            try:
                yield json.loads(line).get("fields", {})
            except ValueError:
                continue

    return proc, fields()


def cpu_times(pid: int) -> tuple[float, float]:
    """A process's user and system CPU time so far, in seconds (fields 14 and 15 of
    /proc/PID/stat, utime and stime, counted after the command name)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def sample(pid: int | None) -> dict:
    if pid is None:
        return {}
    try:
        cpu = sum(cpu_times(pid))
        hwm = None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return {"cpu_s": round(cpu, 3), "peak_rss_kb": hwm}
    except OSError:
        return {}


def main() -> int:
    time_file, log_file = sys.argv[1], sys.argv[2]
    command = sys.argv[sys.argv.index("--") + 1:]
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", time_file, *command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pid = child_of(proc.pid)
    events = []
    with open(log_file, "w") as log:
        for line in proc.stderr:
            log.write(line)
            if not line.startswith("{"):
                continue
            fields = json.loads(line).get("fields", {})
            if "elapsed_ms" in fields:
                events.append({"message": fields["message"], "step": fields.get("step"),
                               "elapsed_s": fields["elapsed_ms"] / 1000, **sample(pid)})
    status = proc.wait()
    print(json.dumps({"status": status, "events": events}))
    return status


if __name__ == "__main__":
    sys.exit(main())
