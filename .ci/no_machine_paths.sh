#!/usr/bin/env bash
# Fails when a tracked text file names a folder of one particular machine (this
# workplace's /work, a root or user home directory): the repo must work from any
# clone on any machine. Scripts use target/ in the clone or CARGO_TARGET_DIR, and
# $HOME for caches. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='(^|[^A-Za-z0-9_.~$-])/(work|root|home/[A-Za-z0-9_-]+|Users/[A-Za-z0-9_-]+)(/|\b)'
if git ls-files -z | grep -zv '^.ci/no_machine_paths.sh$' \
  | xargs -0 grep -InE "$pattern" 2> /dev/null; then
  echo "error: the lines above name a folder of one machine; use a path relative to the" \
    "clone, CARGO_TARGET_DIR or \$HOME instead" >&2
  exit 1
fi
echo "no machine paths in $(git ls-files | wc -l) tracked files"
