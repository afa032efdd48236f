#!/usr/bin/env bash
# The main job on the bundled example (examples/audio: 8 real clips, 4 speakers), offline.
# 1. `balr compare`: one command from audio to an explained, calibrated LR (+ HTML report).
# 2. The pipeline step by step: extract -> binarize -> score test on all 28 trials.
set -euo pipefail
cd "$(dirname "$0")/.."
BALR=${BALR:-.venv/bin/balr}
OUT=${OUT:-examples/out}
AUDIO=examples/audio
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== Same speaker (two different videos of id00906) =="
"$BALR" compare "$AUDIO/id00906/00014.flac" --test "$AUDIO/id00906/00028.flac" \
    --report "$OUT/same_speaker.html"
echo
echo "== Different speakers (id00906 vs id07531) =="
"$BALR" compare "$AUDIO/id00906/00014.flac" --test "$AUDIO/id07531/00023.flac" \
    --report "$OUT/different_speakers.html"
echo
echo "== Step by step on every pair of the example =="
"$BALR" extract "$AUDIO/metadata.csv" --save-dir "$OUT/vectors"
"$BALR" binarize "$AUDIO/metadata.csv" --save-dir "$OUT/vectors"
"$BALR" score test "$AUDIO/metadata.csv" "$AUDIO/trials.tsv" --vectors-dir "$OUT/vectors" \
    --save-dir "$OUT/scores" --explain 3
echo
echo "Reports: $OUT/same_speaker.html $OUT/different_speakers.html"
echo "Scores, metrics and plots: $OUT/scores/"
