#!/usr/bin/env bash
# Rebuild the shipped default models (src/balr/resources/defaults/) from ../shared/data.
# Usage: bash recipes/default_models.sh [--epochs N] [--work-dir DIR] [--no-install]
# Embeddings are cached in the work dir (a rerun skips extraction: delete it to start over).
# Work files go to runs/default_models (gitignored); the log to recipes/logs/default_models.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" PYTHONHASHSEED=0 TQDM_DISABLE=1
log=recipes/logs/default_models.log
mkdir -p "$(dirname "$log")"
{
  echo "# recipes/default_models.sh $*"
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPU cores; $(python --version 2>&1);" \
    "balr $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  python recipes/build_default_models.py "$@"
} 2>&1 | sed -u "s/.*\r//" | tee "$log.tmp"
mv "$log.tmp" "$log"
