#!/usr/bin/env python3
"""The ingest step done by DuckDB and by Polars, on the raw files `townstat generate`
writes, with townstat's rules; and a comparison of what they produced with what
townstat committed.

usage:
  ingest_peers.py run duckdb|polars DATA_DIR OUT_DIR [--as-of DATE] [--threads N]
      Reads every source file under DATA_DIR (DATA_DIR/<kind>/*, in path order), writes
      OUT_DIR/<kind>.parquet (clean rows), patent_applicant.parquet, quarantine.parquet
      (rows with reason codes), ingest_warning.parquet, ingest_run.parquet (per file:
      read = loaded + duplicate + quarantined), and summary.json (phase times).
  ingest_peers.py compare OUT_DIR WAREHOUSE [--markdown]
      Compares OUT_DIR with townstat's committed tables of the warehouse's last run:
      rows per kind (read, loaded, duplicate, quarantined), quarantined rows per reason,
      warnings per code, and the clean rows themselves (multiset difference on every
      canonical column). Prints a JSON report (or markdown); exit 1 on any difference.

The rules each engine implements, and what they leave out, are in bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_common as C  # noqa: E402


def cmd_run(args) -> int:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    workdir = C.make_workdir()
    started = time.perf_counter()
    try:
        if args.engine == "duckdb":
            import ingest_duckdb as engine
        else:
            # Polars sizes its thread pool when it is first imported.
            os.environ["POLARS_MAX_THREADS"] = str(args.threads)
            import ingest_polars as engine
        summary = engine.run(Path(args.data), out, args.as_of, args.threads, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary["ingest_s"] = round(time.perf_counter() - started, 3)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({"engine": args.engine, "ingest_s": summary["ingest_s"]}))
    return 0


# ---------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------

BASENAME = "regexp_extract(source_file, '[^/]+$')"


def cmd_compare(args) -> int:
    import duckdb
    import warehouse_files

    out, wh = Path(args.out), Path(args.warehouse)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    tables = C.SOURCE_KINDS + ["patent_applicant", "quarantine", "ingest_run", "ingest_warning"]
    warehouse_files.register(con, wh, tables, prefix="ts_")
    for t in tables:
        con.execute(f"CREATE VIEW peer_{t} AS SELECT * FROM read_parquet('{out / (t + '.parquet')}')")

    def rows(sql):
        return con.execute(sql).fetchall()

    report: dict = {"kinds": {}, "reasons": {}, "warnings": {}, "rows": {}, "quarantine_rows": {}}
    per_file = ("SELECT kind, sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_quarantined), "
                "count(*) FILTER (WHERE status = 'rejected') FROM {t}_ingest_run GROUP BY kind")
    ts = {r[0]: list(r[1:]) for r in rows(per_file.format(t="ts"))}
    pe = {r[0]: list(r[1:]) for r in rows(per_file.format(t="peer"))}
    for k in C.SOURCE_KINDS:
        report["kinds"][k] = {"townstat": ts.get(k), "peer": pe.get(k)}
    reasons = ("SELECT kind, r, count(*) FROM (SELECT kind, unnest(list_distinct(reasons)) AS r "
               "FROM {t}_quarantine) GROUP BY ALL")
    for name, sql in [("reasons", reasons),
                      ("warnings", reasons.replace("reasons", "warnings").replace("{t}_quarantine",
                                                                                  "{t}_ingest_warning"))]:
        a = {(r[0], r[1]): r[2] for r in rows(sql.format(t="ts"))}
        b = {(r[0], r[1]): r[2] for r in rows(sql.format(t="peer"))}
        for key in sorted(k for k in set(a) | set(b) if k[0] in C.SOURCE_KINDS):
            report[name][f"{key[0]}.{key[1]}"] = {"townstat": a.get(key, 0), "peer": b.get(key, 0)}
    # The clean rows themselves: every canonical column (not run_id), and the source file
    # and row they came from.
    for k in C.SOURCE_KINDS + ["patent_applicant"]:
        cols = ", ".join(C.all_columns(k)) + f", {BASENAME} AS file"
        if k != "patent_applicant":
            cols += ", source_row"
        only_ts = rows(f"SELECT count(*) FROM (SELECT {cols} FROM ts_{k} EXCEPT ALL SELECT {cols} FROM peer_{k})")[0][0]
        only_pe = rows(f"SELECT count(*) FROM (SELECT {cols} FROM peer_{k} EXCEPT ALL SELECT {cols} FROM ts_{k})")[0][0]
        report["rows"][k] = {"only_townstat": only_ts, "only_peer": only_pe}
    # Quarantined rows: same file, row number and set of reasons?
    q = f"SELECT kind, {BASENAME}, row_number, list_sort(list_distinct(reasons)) FROM {{t}}_quarantine"
    only_ts = rows(f"SELECT kind, count(*) FROM ({q.format(t='ts')} EXCEPT ALL {q.format(t='peer')}) GROUP BY kind")
    only_pe = rows(f"SELECT kind, count(*) FROM ({q.format(t='peer')} EXCEPT ALL {q.format(t='ts')}) GROUP BY kind")
    for k in C.SOURCE_KINDS:
        report["quarantine_rows"][k] = {"only_townstat": dict(only_ts).get(k, 0), "only_peer": dict(only_pe).get(k, 0)}

    same = (all(v["townstat"] == v["peer"] for v in report["kinds"].values())
            and all(v["townstat"] == v["peer"] for s in ("reasons", "warnings") for v in report[s].values())
            and all(v["only_townstat"] == v["only_peer"] == 0 for v in report["rows"].values()))
    report["same_counts_and_rows"] = same
    if args.markdown:
        print(markdown(report))
    else:
        print(json.dumps(report, ensure_ascii=False))
    return 0 if same else 1


def markdown(report: dict) -> str:
    def f(counts) -> str:
        if not counts:
            return "—"
        text = "/".join(str(int(n)) for n in counts[:4])
        return text + (f" ({counts[4]} files rejected)" if counts[4] else "")

    lines = ["| kind | townstat read/loaded/dup/quarantined | peer read/loaded/dup/quarantined "
             "| clean rows only in townstat / only in peer "
             "| quarantined rows (file, row, reasons) only in townstat / only in peer |",
             "|---|---|---|---|---|"]
    for k, v in report["kinds"].items():
        r, q = report["rows"][k], report["quarantine_rows"][k]
        lines.append(f"| {k} | {f(v['townstat'])} | {f(v['peer'])} | {r['only_townstat']} / {r['only_peer']} "
                     f"| {q['only_townstat']} / {q['only_peer']} |")
    diffs = [f"{name[:-1]} {k}: townstat {v['townstat']}, peer {v['peer']}"
             for name in ("reasons", "warnings") for k, v in report[name].items() if v["townstat"] != v["peer"]]
    lines.append("")
    lines.append("Reason and warning counts that differ: " + ("; ".join(diffs) if diffs else "none"))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("engine", choices=["duckdb", "polars"])
    r.add_argument("data")
    r.add_argument("out")
    r.add_argument("--as-of", default="2026-01-15")
    r.add_argument("--threads", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("out")
    c.add_argument("warehouse")
    c.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    return cmd_run(args) if args.cmd == "run" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
