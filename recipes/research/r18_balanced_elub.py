"""r18: the shipped BA-LR calibration's ELUB bounds, pooled (as shipped) and corpus-balanced
(issue 18.4: "the ELUB bounds are fitted on unweighted pooled trials, while the fit itself is
corpus-balanced").

The calibration trials are rebuilt from the shipped conditions description (the calibration
recordings' BA bits, `recipes/refit_shipped_conditions.py`'s rows) and their net speech
measured again from the audio (`measure_speech`, as `balr extract` does). Check first: the
pooled ELUB of the shipped calibrator's unbounded LLRs must give back the shipped bounds.
Then the balanced bounds (each corpus weighing equally, classes balanced inside it, the
weights the fit used) and the per-corpus ones are printed.

    PYTHONPATH=src python recipes/research/r18_balanced_elub.py [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from default_models import segment_bounds  # noqa: E402
from refit_shipped_conditions import SHARED, calibration_rows  # noqa: E402

from balr import defaults  # noqa: E402
from balr.audio import load_audio  # noqa: E402
from balr.calibration import CalibrationBundle, elub_bounds  # noqa: E402
from balr.calibration.fitting import balanced_weights  # noqa: E402
from balr.embeddings.vad import measure_speech  # noqa: E402
from balr.scoring.base import Scorer  # noqa: E402

LN10 = math.log(10)
RATE = 16000
FOLDERS = {"speechocean": "speechocean762", "commonvoice": "commonvoice-6.1-sample"}


def speech_seconds(rows) -> np.ndarray:
    """Net speech of each calibration recording, measured as `balr extract` measures it."""
    import pandas as pd

    audio = {}
    for folder in FOLDERS.values():
        meta = pd.read_csv(SHARED / folder / "metadata.csv", dtype=str)
        audio.update({i: SHARED / folder / a for i, a in zip(meta.id, meta.audio, strict=True)})
    out = np.empty(len(rows))
    for k, (item, corpus) in enumerate(zip(rows.id, rows.corpus, strict=True)):
        if corpus == "librispeech":
            stem, segment = item.split("/")[1].rsplit("-", 1)
            wave = load_audio(SHARED / "librispeech-train-clean-100-1utt" / f"{stem}.flac", RATE)
            start, end = segment_bounds(len(wave) / RATE)[int(segment)]
            wave = wave[int(round(start * RATE)) : int(round(end * RATE))]
        else:
            wave = load_audio(audio[item], RATE)
        out[k] = measure_speech(wave, RATE).speech_s
    return out


def calibration_trials(rows, bits, seconds, scorer):
    """Scores, labels, durations and corpus of every within-corpus pair, as the fit saw them."""
    scores, labels, durations, groups = [], [], [], []
    for corpus in dict.fromkeys(rows.corpus):
        index = np.flatnonzero((rows.corpus == corpus).to_numpy())
        a, b = np.triu_indices(len(index), k=1)
        speakers = rows.speaker.to_numpy()[index]
        scores.append(scorer.pairs(bits[index]).score(a, b))
        labels.append((speakers[a] == speakers[b]).astype(np.int64))
        durations.append(np.stack([seconds[index][a], seconds[index][b]], axis=1))
        groups.append(np.full(len(a), corpus))
    return tuple(np.concatenate(x) for x in (scores, labels, durations, groups))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=Path("runs/r18_speech.npy"))
    args = parser.parse_args()
    rows = calibration_rows()
    bundle = CalibrationBundle.load(defaults.CALIBRATION)
    calibrator = bundle.calibrator
    bits = (bundle.conditions.reference_vectors_ > 0).astype(np.float64)
    if args.cache.exists():
        seconds = np.load(args.cache)
    else:
        seconds = speech_seconds(rows)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.cache, seconds)
    scorer = Scorer.load(defaults.SCORER_CHECKPOINT)
    scores, labels, durations, groups = calibration_trials(rows, bits, seconds, scorer)
    shipped_n = calibrator.n_target_ + calibrator.n_nontarget_
    print(f"{len(labels)} trials, {labels.sum()} same-speaker "
          f"(shipped: {calibrator.n_target_} / {shipped_n})")  # fmt: skip
    llr10 = calibrator._unbounded(scores, durations)[0] / LN10
    shipped = (calibrator.lower_bound_ / LN10, calibrator.upper_bound_ / LN10)
    pooled = elub_bounds(llr10, labels)
    weights = balanced_weights(labels, groups)
    balanced = elub_bounds(llr10, labels, weights=weights)
    print(f"shipped log10 bounds {shipped[0]:.4f} {shipped[1]:.4f}")
    print(f"pooled (rebuilt)     {pooled[0]:.4f} {pooled[1]:.4f}")
    print(f"balanced             {balanced[0]:.4f} {balanced[1]:.4f}")
    for corpus in dict.fromkeys(groups):
        mine = groups == corpus
        lo, hi = elub_bounds(llr10[mine], labels[mine])
        tar, non = llr10[mine & (labels == 1)], llr10[mine & (labels == 0)]
        print(f"  {corpus}: own bounds {lo:.4f} {hi:.4f}; tar < -2: {np.mean(tar < -2):.2%}, "
              f"non > 2: {np.mean(non > 2):.3%}")  # fmt: skip
    print(json.dumps({"shipped": shipped, "pooled": pooled, "balanced": balanced}))


if __name__ == "__main__":
    main()
