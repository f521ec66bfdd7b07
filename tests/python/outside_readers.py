#!/usr/bin/env python3
"""Counts the rows of every Delta table of a warehouse the way outside readers do:
each table's LATEST version, with no townstat code — delta-rs's Python binding, Polars
(`read_delta`), DuckDB over the files of the latest version as delta-rs lists them,
and DuckDB's own `delta_scan` when its delta extension can be loaded (it is
downloaded by DuckDB or installed from the `duckdb-ext-delta` package; offline, with
neither, it is reported as unavailable, never counted). The crash tests compare these
counts with what `townstat sql` reads at the last committed run
(crates/cli/tests/it/fault.rs).

Usage: outside_readers.py WAREHOUSE  -> one JSON object on stdout:
{"tables": {name: {"deltalake": n, "polars": n, "duckdb": n, "delta_scan": n|null}},
 "delta_scan": "loaded" | "unavailable: why"}
"""
import json
import sys
from pathlib import Path

import duckdb
import polars as pl
from deltalake import DeltaTable

WH = Path(sys.argv[1])


def delta_scan_connection():
    con = duckdb.connect()
    try:
        con.sql("LOAD delta")
        return con, "loaded"
    except Exception as first:  # noqa: BLE001 - any failure means "not available"
        try:
            # The duckdb-ext-delta wheel ships the extension file in its package.
            import duckdb_ext  # type: ignore

            base = Path(duckdb_ext.__path__[0]) / "extensions"
            found = sorted(base.glob(f"v{duckdb.__version__}/*/delta.duckdb_extension"))
            if not found:
                raise RuntimeError(f"no delta extension for DuckDB {duckdb.__version__} in {base}")
            con.sql(f"LOAD '{found[0]}'")
            return con, "loaded"
        except Exception as second:  # noqa: BLE001
            return None, f"unavailable: {first}; {second}"


def main():
    scan, scan_state = delta_scan_connection()
    plain = duckdb.connect()
    out = {}
    for folder in sorted((WH / "tables").iterdir()):
        if not (folder / "_delta_log").is_dir():
            out[folder.name] = {"deltalake": None, "polars": None, "duckdb": None,
                                "delta_scan": None}
            continue
        dt = DeltaTable(str(folder))
        counts = {"deltalake": dt.to_pyarrow_table().num_rows}
        counts["polars"] = pl.read_delta(str(folder)).height
        files = dt.file_uris()
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            counts["duckdb"] = plain.sql(
                f"SELECT count(*) FROM read_parquet([{listed}])").fetchall()[0][0]
        else:
            counts["duckdb"] = 0
        counts["delta_scan"] = None
        if scan is not None:
            path = str(folder).replace("'", "''")
            counts["delta_scan"] = scan.sql(
                f"SELECT count(*) FROM delta_scan('{path}')").fetchall()[0][0]
        out[folder.name] = counts
    json.dump({"tables": out, "delta_scan": scan_state}, sys.stdout, sort_keys=True)


main()
