#!/usr/bin/env python3
"""Ad-hoc statistician queries, run through `townstat sql` (the release binary, on a
warehouse) and through DuckDB over the very Parquet files of the same committed run
(warehouse_files.py: the Delta table versions the run pinned), with the same SQL text.
Answers must be equal, cell for cell (exit 1 otherwise).

usage:
  adhoc.py WAREHOUSE [--townstat BIN] [--repeat N] [--threads N] [--pause S]
      Runs every query N times in one `townstat sql` shell process (its `\\timing`
      gives each statement's time) and N times in one DuckDB connection; prints JSON
      per query: first and median time of each engine, rows, and whether the answers
      are equal. --pause S types the shell's statements S seconds apart, as a person
      would (the shell's warm tables are read in the background between statements);
      without it they arrive all at once.
  adhoc.py WAREHOUSE --duckdb-only QUERY [--threads N]
      One query through DuckDB in a fresh process (for whole-process time and memory
      next to `townstat sql QUERY`; see run.sh).
  adhoc.py [WAREHOUSE] --sql QUERY
      Prints the SQL of a query (run.sh passes it to `townstat sql`); a query that
      names one enterprise needs the warehouse to pick it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOWN = "yunzhou_daylily"  # 云州黄花: a town every generated registry has
YEAR = 2024

QUERIES = {
    # (a) One town's revenue by year: its member enterprises' annual returns.
    "town_revenue_by_year": f"""
        SELECT a.year, sum(a.revenue) AS revenue, count(*) AS enterprises
        FROM enterprise_annual a
        JOIN town_membership m ON m.uscc = a.uscc AND m.year = a.year
        WHERE m.town_id = '{TOWN}'
        GROUP BY a.year ORDER BY a.year""",
    # (b) The town's top 20 enterprises by revenue in one year.
    "town_top20": f"""
        SELECT e.uscc, e.name, a.revenue
        FROM enterprise_annual a
        JOIN town_membership m ON m.uscc = a.uscc AND m.year = a.year
        JOIN enterprise e ON e.uscc = a.uscc
        WHERE m.town_id = '{TOWN}' AND a.year = {YEAR} AND a.revenue IS NOT NULL
        ORDER BY a.revenue DESC, e.uscc LIMIT 20""",
    # (c) Patents by type and county (of the linked applicant enterprises; a patent
    #     with applicants in two counties counts in both).
    "patents_by_type_county": """
        SELECT d.code AS county_code, d.name AS county, p.patent_type,
               count(DISTINCT p.application_no) AS patents
        FROM patent p
        JOIN patent_applicant a ON a.application_no = p.application_no
        JOIN enterprise e ON e.uscc = a.uscc
        JOIN division d ON d.code = e.division_code
        GROUP BY d.code, d.name, p.patent_type
        ORDER BY d.code, p.patent_type""",
    # (d) A county-by-industry pivot of one year's revenue: counties as rows, GB/T 4754
    #     sections as columns (agriculture, mining, manufacturing, utilities, the rest),
    #     by the enterprise's current county and industry.
    "county_industry_pivot": f"""
        SELECT e.division_code AS county_code,
               sum(CASE WHEN i.section = 'A' THEN a.revenue END) AS agriculture,
               sum(CASE WHEN i.section = 'B' THEN a.revenue END) AS mining,
               sum(CASE WHEN i.section = 'C' THEN a.revenue END) AS manufacturing,
               sum(CASE WHEN i.section = 'D' THEN a.revenue END) AS utilities,
               sum(CASE WHEN i.section NOT IN ('A', 'B', 'C', 'D') THEN a.revenue END) AS other,
               sum(a.revenue) AS total, count(*) AS returns
        FROM enterprise_annual a
        JOIN enterprise e ON e.uscc = a.uscc
        JOIN industry_code i ON i.code = e.industry_code
        WHERE a.year = {YEAR}
        GROUP BY e.division_code ORDER BY e.division_code""",
    # (e) Year over year: every town's revenue in one year next to the year before
    #     (members of each year), and the change.
    "town_revenue_yoy": f"""
        WITH t AS (
            SELECT m.town_id, a.year, sum(a.revenue) AS revenue
            FROM enterprise_annual a
            JOIN town_membership m ON m.uscc = a.uscc AND m.year = a.year
            WHERE a.year IN ({YEAR - 1}, {YEAR})
            GROUP BY m.town_id, a.year)
        SELECT c.town_id, c.revenue, p.revenue AS revenue_before, c.revenue - p.revenue AS change
        FROM t c LEFT JOIN t p ON p.town_id = c.town_id AND p.year = c.year - 1
        WHERE c.year = {YEAR}
        ORDER BY c.town_id""",
    # (f) One enterprise's annual returns, what a county official looks up: a filter on
    #     the USCC, which `townstat maintain` clusters the source tables by. The USCC
    #     is the registry's median one (`lookup_uscc`), so every scale has it.
    "enterprise_returns": """
        SELECT a.year, e.name, a.revenue, a.employees
        FROM enterprise_annual a
        JOIN enterprise e ON e.uscc = a.uscc
        WHERE a.uscc = '{USCC}'
        ORDER BY a.year""",
}
TABLES = ["enterprise", "enterprise_annual", "town_membership", "patent", "patent_applicant", "division",
          "industry_code"]


def one_line(sql: str) -> str:
    return " ".join(sql.split())


def lookup_uscc(con) -> str:
    """The median USCC of the registry: a fixed rule, so any generated scale has one."""
    return con.execute("SELECT uscc FROM enterprise ORDER BY uscc "
                       "LIMIT 1 OFFSET (SELECT count(*) // 2 FROM enterprise)").fetchone()[0]


def with_uscc(queries: dict[str, str], uscc: str) -> dict[str, str]:
    return {name: sql.replace("{USCC}", uscc) for name, sql in queries.items()}


def duckdb_connection(wh: Path, threads: int):
    import duckdb
    import warehouse_files
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    warehouse_files.register(con, wh, TABLES)
    return con


def cell(v) -> str:
    """A value as both engines print it (decimals with their scale, NULL empty)."""
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return format(v, "f")
    return str(v)


def townstat_shell(binary: str, wh: Path, repeat: int, queries: dict[str, str],
                   pause: float = 0.0) -> dict[str, tuple[list[float], list[list[str]]]]:
    """Every query `repeat` times in one shell process; its times and its last answer.
    With `pause` > 0 the statements are typed one at a time, `pause` seconds apart (a
    person reading the answer before the next statement), else all at once."""
    statements = [one_line(q) + ";\n" for q in queries.values() for _ in range(repeat)]
    shell = subprocess.Popen([binary, "--warehouse", str(wh), "sql", "--format", "csv"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    shell.stdin.write("\\timing\n")
    for statement in statements:
        shell.stdin.write(statement)
        shell.stdin.flush()
        if pause > 0:
            time.sleep(pause)
    stdout, _ = shell.communicate()
    if shell.returncode != 0:
        raise subprocess.CalledProcessError(shell.returncode, binary)
    out = stdout.splitlines()
    # Output: "Timing is on.", then per statement its CSV (header first) and "Time: X ms".
    results, current = [], []
    for line in out[1:]:
        if line.startswith("Time: ") and line.endswith(" ms"):
            results.append((float(line[6:-3]) / 1000, current))
            current = []
        else:
            current.append(line)
    import csv
    answers = {}
    for i, name in enumerate(queries):
        runs = results[i * repeat:(i + 1) * repeat]
        rows = list(csv.reader(runs[-1][1]))[1:]
        answers[name] = ([t for t, _ in runs], rows)
    return answers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("warehouse", nargs="?")
    ap.add_argument("--townstat", default=str(Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).resolve().parent.parent / "target")) / "release" / "townstat"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--duckdb-only")
    ap.add_argument("--sql")
    args = ap.parse_args()
    if args.sql and "{USCC}" not in QUERIES[args.sql]:
        print(one_line(QUERIES[args.sql]))
        return 0
    wh = Path(args.warehouse)
    con = duckdb_connection(wh, args.threads)
    queries = with_uscc(QUERIES, lookup_uscc(con))
    if args.sql:
        print(one_line(queries[args.sql]))
        return 0
    if args.duckdb_only:
        rows = con.execute(queries[args.duckdb_only]).fetchall()
        print(json.dumps({"query": args.duckdb_only, "rows": len(rows)}))
        return 0
    theirs = townstat_shell(args.townstat, wh, args.repeat, queries, args.pause)
    report, same_all = {}, True
    for name, sql in queries.items():
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
        mine = [[cell(v) for v in r] for r in rows]
        ts_times, ts_rows = theirs[name]
        same = mine == ts_rows
        same_all &= same
        report[name] = {
            "rows": len(mine), "same_answer": same,
            "townstat_first_s": round(ts_times[0], 4), "townstat_median_s": round(statistics.median(ts_times), 4),
            "duckdb_first_s": round(times[0], 4), "duckdb_median_s": round(statistics.median(times), 4),
        }
        if not same:
            report[name]["first_difference"] = next(
                ([a, b] for a, b in zip(mine, ts_rows, strict=False) if a != b), [len(mine), len(ts_rows)])
    print(json.dumps({"threads": args.threads, "repeat": args.repeat, "pause": args.pause, "queries": report},
                     ensure_ascii=False))
    return 0 if same_all else 1


if __name__ == "__main__":
    sys.exit(main())
