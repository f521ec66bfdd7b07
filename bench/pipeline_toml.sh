#!/usr/bin/env bash
# Prints a pipeline file (TOML) that reads a `townstat generate` folder with the
# repository's alias tables, evaluation and targets: the six kinds the peer ingests
# (bench/ingest_peers.py, DuckDB and Polars) also read, so that the comparison is of the
# same work; ALL_KINDS=1 adds the other ledgers (quality marks, projects, deals).
#   usage: bench/pipeline_toml.sh DATA_DIR > pipeline.toml
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$(cd "$1" && pwd)"
echo "enums = \"$root/pipelines/enums.toml\""
echo "towns = \"$data/towns.csv\""
echo "evaluation = \"$root/pipelines/evaluation.toml\""
echo "targets = \"$root/pipelines/targets.toml\""
kinds=(enterprise enterprise_annual designation employment patent financing)
[ "${ALL_KINDS:-}" = 1 ] && kinds+=(quality_mark project investment_deal)
for k in "${kinds[@]}"; do
  printf '[[source]]\nname = "%s"\nkind = "%s"\nglob = ["%s/%s/*"]\n' "$k" "$k" "$data" "$k"
done
