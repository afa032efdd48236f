#!/usr/bin/env bash
# Rebuild the shipped default models (src/balr/resources/defaults/) from ../shared/data.
# Needs: ../shared/data/{librispeech-train-clean-100-1utt,speechocean762,commonvoice-6.1-sample,
# voxceleb/voxceleb1,voxceleb/voxceleb2} beside the repository.
# Usage: bash recipes/default_models.sh [--epochs N] [--work-dir DIR] [--no-install]
# Embeddings are cached in the work dir (a rerun skips extraction: delete it to start over).
# Work files go to runs/default_models (gitignored); the log to recipes/logs/default_models.log.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared/data  # build_default_models.py reads these corpora from the repo's ../shared
for corpus in librispeech-train-clean-100-1utt speechocean762 commonvoice-6.1-sample \
    voxceleb/voxceleb1 voxceleb/voxceleb2; do
  if [ ! -d "$shared/$corpus" ]; then
    echo "default_models.sh needs LibriSpeech, speechocean762, Common Voice and VoxCeleb in" \
      "$(cd .. && pwd)/shared/data (see its README); missing: $corpus" >&2
    exit 1
  fi
done
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" PYTHONHASHSEED=0 TQDM_DISABLE=1
log=recipes/logs/default_models.log
mkdir -p "$(dirname "$log")"
{
  echo "# recipes/default_models.sh $*"
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPU cores; $(python --version 2>&1);" \
    "balr $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  python recipes/build_default_models.py "$@"
  python recipes/build_channel_reference.py  # the channel reference of the same calibration recordings
} 2>&1 | sed -u "s/.*\r//" | tee "$log.tmp"
mv "$log.tmp" "$log"
