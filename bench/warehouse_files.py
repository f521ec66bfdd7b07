"""The Parquet files of a townstat warehouse as DuckDB views, pinned to the table versions
of one committed run (the `run` table's `table_versions`), read through the deltalake
package, the same way bench/marts_vs_duckdb.py does. Used by ingest_peers.py (compare)
and adhoc.py."""
from __future__ import annotations

import json
from pathlib import Path

from deltalake import DeltaTable


def last_run(wh: Path) -> dict:
    """The latest succeeded run (by start time)."""
    runs = DeltaTable(str(wh / "tables" / "run")).to_pyarrow_table().to_pylist()
    done = [r for r in runs if r["status"] == "succeeded"] or runs
    return max(done, key=lambda r: r["started_at"])


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
