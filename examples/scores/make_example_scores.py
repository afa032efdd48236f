"""Write example_scores.csv: 200 target and 2000 non-target trials with Gaussian LLRs.

The LLRs follow the ideal calibrated Gaussian model: targets ~ N(+4, 8), non-targets ~ N(-4, 8)
(variance = 2 x mean, so every score is exactly the natural-log LR of its own value). The
theoretical EER is Phi(-sqrt(2)) = 7.9%. Ids are made up. Run: python make_example_scores.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from balr.fileio import atomic_path

N_TARGET, N_NONTARGET, MEAN, SEED = 200, 2000, 4.0, 2024


def _ids(speakers: np.ndarray, utterances: np.ndarray) -> list[str]:
    """Ids like spk042_utt07."""
    return [f"spk{s:03d}_utt{u:02d}" for s, u in zip(speakers, utterances, strict=True)]


def make_trials(rng: np.random.Generator) -> pd.DataFrame:
    """Made-up speaker/utterance ids: targets share the speaker, non-targets do not."""
    n = N_TARGET + N_NONTARGET
    enroll_spk = rng.integers(0, 100, n)
    shift = np.concatenate((np.zeros(N_TARGET, int), rng.integers(1, 100, N_NONTARGET)))
    test_spk = (enroll_spk + shift) % 100
    enroll_utt, test_utt = rng.integers(0, 10, n), rng.integers(10, 20, n)
    std = np.sqrt(2.0 * MEAN)
    scores = np.concatenate((rng.normal(MEAN, std, N_TARGET), rng.normal(-MEAN, std, N_NONTARGET)))
    frame = pd.DataFrame(
        {
            "enrollment": _ids(enroll_spk, enroll_utt),
            "test": _ids(test_spk, test_utt),
            "scores": scores.round(4),
            "label": (np.arange(n) < N_TARGET).astype(int),
        }
    )
    return frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)


def main() -> None:
    """Write the CSV beside this script."""
    target = Path(__file__).resolve().parent / "example_scores.csv"
    with atomic_path(target) as tmp:
        make_trials(np.random.default_rng(SEED)).to_csv(tmp, index=False)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
