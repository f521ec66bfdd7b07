#!/usr/bin/env python3
"""The recipe of docs/reading.md ("Delta tables at the versions of the last `run`
row"), as written there, for every table: Polars and DuckDB (over deltalake's
pinned version). The crash tests run it while a killed run's writes are still the
latest versions, and compare with `townstat sql` (crates/cli/tests/it/fault.rs).

Usage: reading_recipe.py WAREHOUSE -> {"table": {"polars": n, "duckdb": n}, ...}
"""
import json
import sys
from pathlib import Path

import duckdb
import polars as pl
from deltalake import DeltaTable

tables = Path(sys.argv[1]) / "tables"

# Polars, as in the doc.
last = pl.read_delta(str(tables / "run")).sort(["finished_at", "run_id"]).row(-1, named=True)
v = json.loads(last["table_versions"])
out = {name: {"polars": pl.read_delta(str(tables / name), version=n).height}
       for name, n in v.items()}

# DuckDB, as in the doc.
run = DeltaTable(str(tables / "run")).to_pyarrow_table()
v2 = json.loads(duckdb.sql(
    "SELECT table_versions FROM run ORDER BY finished_at DESC, run_id DESC LIMIT 1"
).fetchall()[0][0])
assert v2 == v, (v2, v)
for name, n in v2.items():
    pinned = DeltaTable(str(tables / name), version=n).to_pyarrow_dataset()  # noqa: F841
    out[name]["duckdb"] = duckdb.sql("SELECT count(*) FROM pinned").fetchall()[0][0]
out["run"] = {"polars": pl.read_delta(str(tables / "run")).height,
              "duckdb": duckdb.sql("SELECT count(*) FROM run").fetchall()[0][0]}
json.dump(out, sys.stdout, sort_keys=True)
