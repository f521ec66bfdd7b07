#!/usr/bin/env python3
"""Prints the markdown tables of a bench/run.sh run from its result files
(BENCH_DIR/results-<scale>/): GNU time outputs (*.time), townstat's phase samples
(townstat_run.json), the peers' summaries and comparisons, the marts and ad-hoc JSON.

usage: report.py BENCH_DIR SCALE...
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from mart_steps import mart_steps

MARTS_STEPS = [name for _, name in mart_steps()]


def section(title: str, note: str | None, header: str, rows: list[str]) -> list[str]:
    """A markdown section: heading, an optional note, and a table whose separator row
    has as many columns as the header."""
    columns = header.count("|") - 1
    return [f"### {title}", "", *([note, ""] if note else []), header, "|" + "---|" * columns, *rows, ""]


def gnu_time(path: Path) -> dict | None:
    """Wall, CPU (user + sys) and peak RSS of one `/usr/bin/time -v` output."""
    if not path.exists():
        return None
    text = path.read_text()

    def get(label: str) -> str:
        return re.search(rf"{re.escape(label)}: (.*)", text).group(1).strip()

    clock = get("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(clock)))
    return {"wall": wall, "cpu": float(get("User time (seconds)")) + float(get("System time (seconds)")),
            "rss_mib": int(get("Maximum resident set size (kbytes)")) / 1024}


def load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def f(x, digits=2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def ratio(a, b) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}"


def mib(kb) -> float | None:
    return None if kb is None else kb / 1024


def townstat_phases(res: Path) -> dict:
    """Ingest (+ commit) and marts figures of townstat's run, from its log samples."""
    run = load(res / "townstat_run.json") or {"events": []}
    ev = {e["message"] if e["message"] != "mart step" else e["step"]: e for e in run["events"]}
    ingest = commit = None
    if "ingested" in ev and "source tables committed" in ev:
        ingest, commit = ev["ingested"], ev["source tables committed"]
    marts_wall = sum(ev[s]["elapsed_s"] for s in MARTS_STEPS if s in ev) if "city_year" in ev else None

    def cpu(e: dict | None) -> float | None:
        return e.get("cpu_s") if e else None

    marts_cpu = None
    if commit and "city_year" in ev and cpu(commit) is not None and cpu(ev["city_year"]) is not None:
        marts_cpu = cpu(ev["city_year"]) - cpu(commit)
    return {
        "ingest_wall": ingest["elapsed_s"] + commit["elapsed_s"] if ingest else None,
        "ingest_cpu": cpu(commit), "ingest_rss": mib(commit.get("peak_rss_kb")) if commit else None,
        "marts_wall": marts_wall, "marts_cpu": marts_cpu,
        "whole": gnu_time(res / "townstat_run.time"), "status": run.get("status"),
    }


def compare_note(c) -> str:
    if c is None:
        return "not compared"
    if c.get("same_counts_and_rows"):
        return "yes"
    notes = []
    for k, v in c["kinds"].items():
        if v["townstat"] != v["peer"]:
            notes.append(f"{k} counts {v['peer']} vs {v['townstat']}")
    for name in ("reasons", "warnings"):
        for k, v in c[name].items():
            if v["townstat"] != v["peer"]:
                notes.append(f"{k} {v['peer']} vs {v['townstat']}")
    for k, v in c["rows"].items():
        if v["only_townstat"] or v["only_peer"]:
            notes.append(f"{k} rows only townstat {v['only_townstat']}, only peer {v['only_peer']}")
    return "no: " + "; ".join(notes[:6]) + (" …" if len(notes) > 6 else "")


def main() -> int:
    work, scales = Path(sys.argv[1]), sys.argv[2:]
    out = []
    ingest, marts, adhoc, whole, growth = [], [], [], [], {}
    for s in scales:
        res = work / f"results-{s}"
        ts = townstat_phases(res)
        cmp = {e: load(res / f"{e}_compare.json") for e in ("duckdb", "polars")}
        rows = None
        if cmp["duckdb"] and cmp["duckdb"]["kinds"]:
            rows = sum(int(v["townstat"][0]) for v in cmp["duckdb"]["kinds"].values() if v["townstat"])
        w = ts["whole"] or {}
        whole.append(f"| {s} | {rows or '—'} | {ts['status']} | {f(ts['ingest_wall'])} | {f(ts['marts_wall'])} "
                     f"| {f(w.get('wall'))} | {f(w.get('cpu'))} | {f(w.get('rss_mib'), 0)} |")
        ingest.append(f"| {s} | {rows or '—'} | townstat | {f(ts['ingest_wall'])} | {f(ts['ingest_cpu'])} "
                      f"| {f(ts['ingest_rss'], 0)} | | | | |")
        growth.setdefault(("ingest", "townstat"), []).append((s, rows, ts["ingest_wall"]))
        for e in ("duckdb", "polars"):
            summ, gt = load(res / f"{e}_ingest.json") or {}, gnu_time(res / f"{e}_ingest.time") or {}
            wall = summ.get("ingest_s")
            ingest.append(f"| {s} | | {e} | {f(wall)} ({f(gt.get('wall'))}) | {f(gt.get('cpu'))} "
                          f"| {f(gt.get('rss_mib'), 0)} | {ratio(ts['ingest_wall'], wall)} "
                          f"| {ratio(ts['ingest_cpu'], gt.get('cpu'))} | {ratio(ts['ingest_rss'], gt.get('rss_mib'))} "
                          f"| {compare_note(cmp[e])} |")
            growth.setdefault(("ingest", e), []).append((s, rows, wall))
        dm, gt = load(res / "duckdb_marts.json") or {}, gnu_time(res / "duckdb_marts.time") or {}
        same = dm.get("diff") and all(m == t and bad == 0 for m, t, bad in dm["diff"].values())
        marts.append(f"| {s} | townstat | {f(ts['marts_wall'], 3)} | {f(ts['marts_cpu'])} "
                     f"| {f(w.get('rss_mib'), 0)} (whole run) | | | |")
        marts.append(f"| {s} | DuckDB | {f(dm.get('duckdb_marts_s'), 3)} | {f(dm.get('duckdb_marts_cpu_s'))} "
                     f"| {f(gt.get('rss_mib'), 0)} (whole process) "
                     f"| {ratio(ts['marts_wall'], dm.get('duckdb_marts_s'))} "
                     f"| {ratio(ts['marts_cpu'], dm.get('duckdb_marts_cpu_s'))} "
                     f"| {'yes' if same else 'NO: ' + json.dumps(dm.get('diff'))} |")
        growth.setdefault(("marts", "townstat"), []).append((s, rows, ts["marts_wall"]))
        growth.setdefault(("marts", "duckdb"), []).append((s, rows, dm.get("duckdb_marts_s")))
        ah = (load(res / "adhoc.json") or {}).get("queries", {})
        for q, r in ah.items():
            a, b = gnu_time(res / f"townstat_sql_{q}.time") or {}, gnu_time(res / f"duckdb_sql_{q}.time") or {}
            adhoc.append(f"| {s} | {q} | {f(r['townstat_median_s'] * 1000, 1)} | {f(r['duckdb_median_s'] * 1000, 1)} "
                         f"| {ratio(r['townstat_median_s'], r['duckdb_median_s'])} "
                         f"| {f(a.get('wall'))} / {f(a.get('cpu'))} / {f(a.get('rss_mib'), 0)} "
                         f"| {f(b.get('wall'))} / {f(b.get('cpu'))} / {f(b.get('rss_mib'), 0)} "
                         f"| {'yes' if r['same_answer'] else 'NO'} |")
            growth.setdefault((f"ad-hoc {q}", "townstat"), []).append((s, rows, r["townstat_median_s"]))
            growth.setdefault((f"ad-hoc {q}", "duckdb"), []).append((s, rows, r["duckdb_median_s"]))

    out += section("townstat's whole run", None,
                   f"| scale | rows read | exit status | ingest + commit (s) | marts, {len(MARTS_STEPS)} steps (s) | whole run wall (s) "
                   "| whole run CPU (s) | peak RSS (MiB) |", whole)
    out += section("Ingest: raw files → validated, de-duplicated tables",
                   "townstat: `ingested` + `source tables committed` from its log; CPU and peak RSS sampled at the "
                   "commit event (from process start). Peers: time inside the process (whole process, with Python's "
                   "start-up, in brackets); CPU and peak RSS of the whole process.",
                   "| scale | rows read | engine | wall (s) | CPU (s) | peak RSS (MiB) | wall townstat/peer "
                   "| CPU townstat/peer | RSS townstat/peer | same output as townstat |", ingest)
    out += section(f"Marts: the {len(MARTS_STEPS)} steps stg_year … city_year, same SQL, same Parquet files",
                   "townstat: sum of its `mart step` log events; CPU sampled between the commit event and the "
                   f"city_year step. DuckDB: `marts_vs_duckdb.py` (time and CPU of the {len(MARTS_STEPS)} statements in-process).",
                   "| scale | engine | wall (s) | CPU (s) | peak RSS (MiB) | wall townstat/DuckDB | CPU townstat/DuckDB "
                   "| same marts |", marts)
    out += section("Ad-hoc queries",
                   "Median of the repetitions inside one process (`townstat sql` shell with `\\timing`; one DuckDB "
                   "connection); then one query per fresh process: `townstat sql QUERY` vs `python3 adhoc.py "
                   "--duckdb-only QUERY` (Python start-up, imports and the Delta log read included).",
                   "| scale | query | townstat (ms) | DuckDB (ms) | ratio | townstat process wall s / CPU s / RSS MiB "
                   "| DuckDB process wall s / CPU s / RSS MiB | same answer |", adhoc)
    lines = []
    for (step, engine), pts in growth.items():
        for (s0, r0, t0), (s1, r1, t1) in zip(pts, pts[1:], strict=False):
            if r0 and r1 and t0 and t1:
                lines.append(f"| {step} | {engine} | {s0} → {s1} | ×{r1 / r0:.1f} | ×{t1 / t0:.1f} |")
    if lines:
        out += ["### Growth with scale", "", "| step | engine | scales | rows | time |", "|---|---|---|---|---|",
                *lines, ""]
    print("\n".join([setup(), ""] + out))
    return 0


def setup() -> str:
    """The machine and versions the figures come from."""
    import os
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    root = Path(__file__).resolve().parent.parent
    git = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip() or "unknown"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next((int(line.split()[1]) // 1024 // 1024 for line in open("/proc/meminfo")
                if line.startswith("MemTotal")), 0)
    return (f"Setup: {os.cpu_count()} cores ({cpu}), {mem} GiB; townstat {git} (release build); "
            f"DuckDB {pkg('duckdb')}, Polars {pkg('polars')}, deltalake {pkg('deltalake')}, "
            f"pyarrow {pkg('pyarrow')}, fastexcel {pkg('fastexcel')}; Python {platform.python_version()}.")


if __name__ == "__main__":
    sys.exit(main())
