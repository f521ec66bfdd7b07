#!/usr/bin/env python3
"""Reads a warehouse written by `townstat run` with no townstat code: Delta tables
through delta-rs's Python binding, their Parquet files and the marts export through
DuckDB, pyarrow and Polars. Checks row counts and sums against `townstat sql`, the
nothing-lost identity, the types of the contract (Decimal(20,2) money, Date32 dates),
that every stored USCC passes the GB 32100 check, and that the export equals
`townstat sql` cell for cell. Usage: readback.py WAREHOUSE TOWNSTAT_BINARY
"""
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

WH = Path(sys.argv[1])
BIN = sys.argv[2]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def townstat_json(query):
    out = subprocess.run([BIN, "--warehouse", str(WH), "sql", query, "--format", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def table(name):
    return DeltaTable(str(WH / "tables" / name))


A = "0123456789ABCDEFGHJKLMNPQRTUWXY"
W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc_ok(code):
    if len(code) != 18 or any(c not in A for c in code):
        return False
    s = sum(A.index(c) * w for c, w in zip(code, W))
    return A[(31 - s % 31) % 31] == code[17]


# Readers see the versions the last run recorded; after one clean run those are the
# latest versions, which is what an outside reader opens.
runs = table("run").to_pyarrow_table().to_pylist()
check("one committed run", len(runs) == 1, runs)
versions = json.loads(runs[0]["table_versions"])

for name in ["enterprise", "enterprise_annual", "designation", "employment", "patent",
             "patent_applicant", "financing", "quarantine", "ingest_run", "ingest_warning",
             "town", "industry_code", "division"]:
    dt = table(name)
    check(f"{name} version pinned", dt.version() == versions[name], (dt.version(), versions[name]))
    n_delta = dt.to_pyarrow_table().num_rows
    n_ts = townstat_json(f"SELECT count(*) AS n FROM {name}")[0]["n"]
    check(f"{name} row count", n_delta == n_ts, (n_delta, n_ts))
    check(f"{name} not empty", n_delta > 0, n_delta)

ent = table("enterprise").to_pyarrow_table()
check("registered_capital is decimal(20,2)",
      ent.schema.field("registered_capital").type == pa.decimal128(20, 2),
      ent.schema.field("registered_capital").type)
check("established_on is date32", ent.schema.field("established_on").type == pa.date32(),
      ent.schema.field("established_on").type)
bad = [u for u in ent.column("uscc").to_pylist() if not uscc_ok(u)]
check("every stored USCC passes GB 32100", not bad, bad[:5])
counties = {"140212", "140213", "140214", "140215", "140221", "140222", "140223", "140224",
            "140225", "140226", "140271"}
outside = set(ent.column("division_code").to_pylist()) - counties
check("every division code is a Datong county", not outside, outside)
check("industry_code reference has 1,972 rows", table("industry_code").to_pyarrow_table().num_rows == 1972)

runs_files = table("ingest_run").to_pyarrow_table().to_pylist()
for f in runs_files:
    check(f"nothing lost in {f['source_file']}",
          f["rows_read"] == f["rows_loaded"] + f["rows_duplicate"] + f["rows_quarantined"], f)

# DuckDB over the Parquet files of the pinned versions: same sums as townstat.
con = duckdb.connect()
files = table("enterprise_annual").file_uris()
duck = con.execute("SELECT sum(revenue), count(*) FROM read_parquet(?)", [files]).fetchone()
ts = townstat_json("SELECT CAST(sum(revenue) AS VARCHAR) AS s, count(*) AS n FROM enterprise_annual")[0]
check("annual revenue sum (DuckDB = townstat)", Decimal(duck[0]) == Decimal(ts["s"]), (duck, ts))
check("annual row count (DuckDB = townstat)", duck[1] == ts["n"], (duck, ts))
files = table("employment").file_uris()
duck = con.execute("SELECT sum(insured), count(DISTINCT uscc) FROM read_parquet(?)", [files]).fetchone()
ts = townstat_json("SELECT sum(insured) AS s, count(DISTINCT uscc) AS n FROM employment")[0]
check("employment sums (DuckDB = townstat)", (duck[0], duck[1]) == (ts["s"], ts["n"]), (duck, ts))

# The plain Parquet export (no Delta): DuckDB, pyarrow and the CLI see the same
# town_year, cell for cell.
export = WH / "export" / "town_year"
duck_rows = con.execute(
    f"SELECT * FROM read_parquet('{export}/*.parquet') ORDER BY town_id, year").fetchall()
duck_cols = [d[0] for d in con.description]
ts_rows = townstat_json("SELECT * FROM town_year ORDER BY town_id, year")
check("export has every town_year row", len(duck_rows) == len(ts_rows), (len(duck_rows), len(ts_rows)))
mismatch = []
for d, t in zip(duck_rows, ts_rows):
    for col, v in zip(duck_cols, d):
        w = t.get(col)
        if isinstance(v, Decimal):
            same = w is not None and v == Decimal(str(w))
        elif isinstance(v, float):
            same = w is not None and abs(v - w) <= 1e-9 * max(1.0, abs(v))
        else:
            same = v == w
        if not same:
            mismatch.append((t["town_id"], t["year"], col, v, w))
check("export town_year equals townstat sql, cell for cell", not mismatch, mismatch[:5])
pa_table = __import__("pyarrow.parquet", fromlist=["read_table"]).read_table(str(export))
check("pyarrow reads the export", pa_table.num_rows == len(ts_rows), pa_table.num_rows)
check("export money stays decimal(20,2)", pa_table.schema.field("revenue").type == pa.decimal128(20, 2),
      pa_table.schema.field("revenue").type)
# The labels travel with the file: a BI tool reading the Parquet alone can show them.
field_labels = {f.name: (f.metadata or {}).get(b"label", b"").decode() for f in pa_table.schema}
check("export fields carry their Chinese labels (Arrow field metadata `label`)",
      field_labels.get("revenue") == "营业收入(元)" and field_labels.get("town_id") == "专业镇编号"
      and all(field_labels.values()),
      [n for n, l in field_labels.items() if not l][:5] or (field_labels.get("revenue"), field_labels.get("town_id")))
check("export schema carries the table's label",
      (pa_table.schema.metadata or {}).get(b"label", b"").decode() == "专业镇年度指标",
      pa_table.schema.metadata)

import polars as pl
pl_df = pl.read_parquet(f"{export}/*.parquet").sort(["town_id", "year"])
check("polars reads the export", pl_df.height == len(ts_rows), pl_df.height)
check("polars sees the same revenues",
      [str(v) for v in pl_df["revenue"].to_list()] == [str(Decimal(str(t["revenue"])).quantize(Decimal("0.01"))) for t in ts_rows],
      (pl_df["revenue"].to_list()[:3], [t["revenue"] for t in ts_rows[:3]]))

# The drill-down identity on the sample warehouse: every summed town_year column equals
# the sum over its members in town_member_year (the query of tests/slt/drilldown.slt,
# where it runs on the hand-made data).
slt = (Path(__file__).resolve().parents[1] / "slt" / "drilldown.slt").read_text()
identity = slt.split("# The identity")[1].split("query I\n", 1)[1].split("\n----")[0]
got = townstat_json(identity)
check("drill-down: Σ members = town_year for every summed column", got == [{"mismatches": 0}], got)
members = townstat_json("SELECT count(*) AS n FROM town_member_year")[0]["n"]
membership = townstat_json("SELECT count(*) AS n FROM town_membership")[0]["n"]
check("drill-down: one row per membership", members == membership and members > 0, (members, membership))

# Three-year CAGR (town_year_structure) against revenue read from town_year here.
rev = {(r["town_id"], r["year"]): float(r["revenue"])
       for r in townstat_json("SELECT town_id, year, revenue FROM town_year")}
cagr = townstat_json("SELECT town_id, year, revenue_cagr_3y AS c FROM town_year_structure")
bad = []
for r in cagr:
    r.setdefault("c", None)  # JSON output leaves nulls out
    a, b = rev.get((r["town_id"], r["year"])), rev.get((r["town_id"], r["year"] - 3))
    want = None if a is None or b is None or a <= 0 or b <= 0 else (a / b) ** (1 / 3) - 1
    if (want is None) != (r["c"] is None) or (want is not None and abs(want - r["c"]) > 1e-9):
        bad.append((r, want))
check("revenue_cagr_3y = (rev(Y) / rev(Y-3))^(1/3) - 1", not bad and any(r["c"] is not None for r in cagr), bad[:3])

# The exports carry the reference tables that name the marts' ids.
for name, key in [("town", "town_id"), ("division", "code"), ("industry_code", "code")]:
    path = WH / "export" / name / f"{name}.parquet"
    rows = duckdb.sql(f"SELECT count(*), count(name) FROM read_parquet('{path}')").fetchall()[0] if path.exists() else None
    want = townstat_json(f"SELECT count(*) AS n FROM {name}")[0]["n"]
    check(f"export has {name} with names", rows is not None and rows[0] == want and rows[1] == want, (rows, want))

print(f"readback: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
