"""The Parquet files of a townstat warehouse as DuckDB views, pinned to the table versions
of one committed run (the `run` table's `table_versions`), read through the deltalake
package. Used by marts_vs_duckdb.py, ingest_peers.py (compare) and adhoc.py."""
from __future__ import annotations

import json
from pathlib import Path

from deltalake import DeltaTable


def last_run(wh: Path) -> dict:
    """The last committed run, as townstat's readers choose it (the latest by commit
    time, then id; a run that finished with some files rejected is committed too)."""
    runs = DeltaTable(str(wh / "tables" / "run")).to_pyarrow_table().to_pylist()
    return max(runs, key=lambda r: (r["finished_at"], r["run_id"]))


def register(con, wh: Path, tables: list[str], prefix: str = "") -> dict:
    """Creates a view `<prefix><table>` per table over the files of the last run's
    version; returns that run."""
    run = last_run(wh)
    versions = json.loads(run["table_versions"])
    for t in tables:
        dt = DeltaTable(str(wh / "tables" / t), version=versions[t])
        files = dt.file_uris()
        if files:
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{t} AS SELECT * FROM read_parquet({files!r})")
        else:  # an empty table: its schema, no rows
            con.register(f"{prefix}{t}_empty", dt.to_pyarrow_table())
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{t} AS SELECT * FROM {prefix}{t}_empty")
    return run
