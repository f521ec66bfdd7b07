"""The mart steps the benchmark times, read from townstat's own list (STEPS in
crates/query/src/marts.rs), so the harness cannot drift from the build: every step
from stg_year up to and including city_year, as (layer, name)."""
from __future__ import annotations

import re
from pathlib import Path

MARTS_RS = Path(__file__).resolve().parent.parent / "crates" / "query" / "src" / "marts.rs"


def mart_steps() -> list[tuple[str, str]]:
    text = MARTS_RS.read_text()
    steps = re.findall(r'\(\s*"(staging|intermediate|marts)",\s*"(\w+)",', text)
    names = [name for _, name in steps]
    if "city_year" not in names:
        raise SystemExit(f"{MARTS_RS}: no city_year step in STEPS")
    return steps[: names.index("city_year") + 1]
