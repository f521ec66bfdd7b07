#!/usr/bin/env bash
# Prints a pipeline file (TOML) that reads every kind of a `townstat generate` folder,
# with the repository's alias tables, evaluation and targets.
#   usage: bench/pipeline_toml.sh DATA_DIR > pipeline.toml
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$(cd "$1" && pwd)"
echo "enums = \"$root/pipelines/enums.toml\""
echo "towns = \"$data/towns.csv\""
echo "evaluation = \"$root/pipelines/evaluation.toml\""
echo "targets = \"$root/pipelines/targets.toml\""
for k in enterprise enterprise_annual designation employment patent financing quality_mark project investment_deal; do
  printf '[[source]]\nname = "%s"\nkind = "%s"\nglob = ["%s/%s/*"]\n' "$k" "$k" "$data" "$k"
done
