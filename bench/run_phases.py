#!/usr/bin/env python3
"""A `townstat run --log-format json` sampled by bench/rss.sh, by phase: the marts'
time (from "source tables committed" to "marts built"), the mart tests', the 19 mart
steps up to city_year (the steps bench/marts_vs_duckdb.py times for DuckDB), and the
peak resident memory before the marts and from them to the end.

usage: bench/run_phases.py OUT [OUT ...]   (OUT as given to bench/rss.sh)
"""
import datetime
import json
import os
import sys

from mart_steps import mart_steps

STEPS = [name for _, name in mart_steps()]
UP_TO_CITY_YEAR = STEPS[: STEPS.index("city_year") + 1]


def main():
    for out in sys.argv[1:]:
        rss = [tuple(map(float, line.split())) for line in open(out + ".rss") if len(line.split()) == 2]
        # The sampler's clock started when the command did; its file was last written
        # at the last sample.
        start = os.stat(out + ".rss").st_mtime - rss[-1][0]
        events, steps = {}, {}
        for line in open(out + ".log"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            fields = event.get("fields", {})
            at = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() - start
            events[fields.get("message")] = at
            if fields.get("message") == "mart step":
                steps[fields["step"]] = fields["elapsed_ms"]
        committed, built = events["source tables committed"], events["marts built"]
        before = max(r for t, r in rss if t < committed) / 1024
        after = max(r for t, r in rss if t >= committed) / 1024
        print(json.dumps({
            "run": out,
            "marts_s": round(built - committed, 1),
            "tests_s": round(events["marts tested"] - built, 1),
            "steps_to_city_year_s": sum(steps.get(s, 0) for s in UP_TO_CITY_YEAR) / 1000,
            "run_s": round(events["run committed"], 1),
            "peak_before_marts_mib": round(before),
            "peak_marts_to_end_mib": round(after),
        }))


if __name__ == "__main__":
    main()
