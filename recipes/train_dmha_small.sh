#!/usr/bin/env bash
# Small DoubleMHA extractor on CPU in a few minutes: VGG3L, kernel 64, 8 heads, embedding 128.
# Trains on 200 LibriSpeech speakers (one whole utterance each, random 2 s windows) for 800
# steps and validates every 100 by cosine EER on 3.5 s segments of 51 held-out speakers
# (205 same-speaker, 820 different-speaker pairs). Client pairs are segments of the same
# utterance: easier than real cross-session trials.
# Needs: LibriSpeech utterances (*.flac, one folder) in $LIBRI (default below).
# Usage: bash recipes/train_dmha_small.sh [extra key=value overrides]
set -euo pipefail
LIBRI=${LIBRI:-../shared/data/librispeech-train-clean-100-1utt}
DATA=${DATA:-runs/dmha_small_data}
OUT=${OUT:-runs/dmha_small}
LOG=${LOG:-recipes/logs/train_dmha_small.log}
if ! compgen -G "$LIBRI/*.flac" > /dev/null; then
    echo "train_dmha_small.sh needs LibriSpeech utterances (*.flac) in $LIBRI: set LIBRI=DIR" \
        "(default ../shared/data/librispeech-train-clean-100-1utt)" >&2
    exit 1
fi
mkdir -p "$(dirname "$LOG")"

python recipes/make_dmha_small_lists.py "$LIBRI" "$DATA"
balr extractor features "$DATA/train_labels.txt" --data-dir "$LIBRI" --out-dir "$DATA/features"
rm -rf "$OUT"
START=$SECONDS
# tqdm redraws with carriage returns: keep only the logged lines in the log file.
balr extractor train \
    --train_labels_path "$DATA/train_labels.txt" --train_data_dir "$DATA/features" \
    --valid_clients "$DATA/clients.txt" --valid_impostors "$DATA/impostors.txt" \
    --valid_data_dir "$DATA/valid" --out_dir "$OUT" \
    --front_end VGG3L --kernel_size 64 --heads_number 8 --embedding_size 128 \
    --window_size 2.0 --batch_size 16 --gradientAccumulation 1 --learning_rate 0.001 \
    --weight_decay 0 --annealing --max_steps 800 --validate_every 100 --print_every 50 \
    --validate_at_start \
    --num_workers 0 --threads 2 "$@" 2>&1 | tr '\r' '\n' | grep -v -e '^train:' -e '^[[:space:]]*$' \
    | tee "$LOG"
echo "training wall time: $((SECONDS - START)) s" | tee -a "$LOG"
AUDIO=$DATA/valid/$(head -1 "$DATA/clients.txt" | cut -d' ' -f1).wav
balr extractor embed --audio "$AUDIO" --checkpoint "$OUT" | cut -c1-100
balr extractor attention "$AUDIO" --checkpoint "$OUT" --out "$OUT/attention.png"
