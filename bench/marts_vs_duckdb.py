#!/usr/bin/env python3
"""Builds the marts of pipelines/marts with DuckDB over the very Parquet files of a
townstat warehouse (the Delta files of the last committed run), with the same SQL
text, and compares the results with townstat's committed town_year, county_year and
city_year — and the marts that need no evaluation or targets configuration:
town_member_year, the *_yoy marts, town_year_structure, town_cluster,
town_designation_year, enterprise_size_year, and the other ledgers' quality_mark_year,
project_status, project_year, investment_year — cell for cell
(exit 1 on any difference). It prints DuckDB's wall and CPU
time for the steps up to city_year (the list in crates/query/src/marts.rs), and each
step's wall time (steps_s), for the benchmark.

The three engine-specific functions are given DuckDB equivalents: scale_tier as a CASE
macro, industry_matches through GB/T 4754's class → section map, and the aggregate
top_k_sum (the sum of the k largest values) as the sum of DuckDB's own max(x, k).
Everything else is the SQL of pipelines/marts unchanged.

usage: marts_vs_duckdb.py WAREHOUSE RUN_YEAR [THREADS]
"""
import json
import re
import sys
import time
from pathlib import Path

import duckdb
from deltalake import DeltaTable

from mart_steps import mart_steps
from warehouse_files import register

ROOT = Path(__file__).resolve().parent.parent
WH = Path(sys.argv[1])
RUN_YEAR = int(sys.argv[2])
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 2

STEPS = mart_steps()
SOURCES = ["enterprise", "enterprise_history", "enterprise_annual", "designation",
           "employment", "patent", "patent_applicant", "financing", "town", "town_roster",
           "industry_code", "division", "town_history", "above_size_rule", "size_class_rule",
           "quality_mark", "project", "investment_deal"]

con = duckdb.connect()
con.execute(f"SET threads = {THREADS}")
run = register(con, WH, SOURCES)
versions = json.loads(run["table_versions"])
con.execute("""CREATE MACRO scale_tier(r) AS CASE
    WHEN r >= 20000000000 THEN '200亿级' WHEN r >= 10000000000 THEN '100亿级'
    WHEN r >= 5000000000 THEN '50亿级' WHEN r >= 2000000000 THEN '20亿级'
    WHEN r >= 1000000000 THEN '10亿级' WHEN r >= 500000000 THEN '5亿级' ELSE '5亿以下' END""")
con.execute("CREATE TABLE class_section AS SELECT code, section FROM industry_code")
con.execute("""CREATE MACRO industry_matches(c, p) AS CASE
    WHEN regexp_full_match(p, '[A-Z]') THEN (SELECT cs.section FROM class_section cs WHERE cs.code = c) = p
    ELSE starts_with(c, p) END""")
con.execute("CREATE MACRO top_k_sum(x, k) AS list_sum(max(x, k))")
first = con.execute(
    f"SELECT greatest(2015, least({RUN_YEAR}, CAST(min(date_part('year', established_on)) AS INT))) FROM enterprise"
).fetchone()[0]
params = {"run_id": run["run_id"], "run_year": str(RUN_YEAR), "first_year": str(first),
          "baseline_year": "2022"}

started = time.perf_counter()
cpu_started = time.process_time()  # CPU time of every thread of this process
step_s = {}
for layer, name in STEPS:
    sql = (ROOT / "pipelines" / "marts" / layer / f"{name}.sql").read_text()
    for k, v in params.items():
        sql = sql.replace("${" + k + "}", v)
    step_started = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")
    step_s[name] = round(time.perf_counter() - step_started, 3)
elapsed = time.perf_counter() - started
cpu = time.process_time() - cpu_started

# The marts after city_year that need no evaluation or target configuration (同比,
# growth and structure, cluster strength, with the cluster benchmarks of
# pipelines/evaluation.toml), built the same way but not timed: they are checked too.
import tomllib
cluster = tomllib.loads((ROOT / "pipelines" / "evaluation.toml").read_text()).get("cluster", {})
defaults = {"lq_min": 1.25, "size_top_share": 0.5, "strong_lq_min": 1.0,
            "strong_lq_percentile": 0.75, "strong_floor_percentile": 0.25}
params.update({k: repr(float(cluster.get(k, v))) for k, v in defaults.items()})
EXTRA = ["town_year_yoy", "town_year_structure", "county_year_yoy", "city_year_yoy", "town_cluster",
         "quality_mark_year", "intermediate/int_project_latest", "project_status", "project_year",
         "investment_year"]
for step in EXTRA:
    layer, name = step.split("/") if "/" in step else ("marts", step)
    sql = (ROOT / "pipelines" / "marts" / layer / f"{name}.sql").read_text()
    for k, v in params.items():
        sql = sql.replace("${" + k + "}", v)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

# Same figures as townstat's committed marts?
diff = {}
for mart, key in [("town_year", "town_id, year"), ("county_year", "county_code, year"), ("city_year", "year"),
                  ("town_member_year", "town_id, year, uscc"), ("town_year_yoy", "town_id, year"),
                  ("town_year_structure", "town_id, year"), ("county_year_yoy", "county_code, year"),
                  ("city_year_yoy", "year"), ("town_cluster", "town_id, year"),
                  ("town_designation_year", "town_id, year"), ("enterprise_size_year", "uscc, year"),
                  ("quality_mark_year", "group_type, group_id, year, kind, level"),
                  ("project_status", "project_id"), ("project_year", "group_type, group_id, year"),
                  ("investment_year", "group_type, group_id, year")]:
    mine = con.execute(f"SELECT * EXCLUDE (run_id) FROM {mart} ORDER BY {key}").fetchall()
    dt = DeltaTable(str(WH / "tables" / mart), version=versions[mart])
    con.register("ts_" + mart, dt.to_pyarrow_table())
    theirs = con.execute(f"SELECT * EXCLUDE (run_id) FROM ts_{mart} ORDER BY {key}").fetchall()
    bad = 0
    for a, b in zip(mine, theirs):
        for x, y in zip(a, b):
            if isinstance(x, float) or isinstance(y, float):
                if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-9 * max(1, abs(x))):
                    bad += 1
            elif str(x) != str(y):
                bad += 1
    diff[mart] = (len(mine), len(theirs), bad)
print(json.dumps({"duckdb_marts_s": round(elapsed, 3), "duckdb_marts_cpu_s": round(cpu, 3), "threads": THREADS,
                  "steps_s": step_s, "diff": diff}))
# Any differing cell or row count is a failure: the two engines ran the same SQL on the
# same files, so they must agree.
sys.exit(0 if all(m == t and bad == 0 for m, t, bad in diff.values()) else 1)
