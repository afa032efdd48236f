"""Issue 18.4 for `compare` without a population: does the shipped channel check
(`balr.conditions.channel`, src/balr/resources/defaults/channel_reference.safetensors) leave
strongly misleading LRs among the trials it does not warn?

On the population benchmark's trials (runs/population_robustness/<corpus>/<variant>,
`scores_pop0/scores.csv`: the shipped chain's calibrated natural-log LRs without a
population), every recording's channel profile is checked as `compare` checks it; a trial
is warned when either of its recordings is flagged. Printed per corpus and variant: the
different-speaker trials with LR > 100, the share of trials warned, and the share of the
different-speaker trials with LR > 100 among the un-warned ones (the target: <= 1 %).
A few minutes on CPU:

    PYTHONPATH=src python recipes/research/r13_channel_trials.py [--runs RUNS_FOLDER]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from balr import defaults
from balr.audio import load_audio
from balr.conditions.channel import ChannelReference, channel_profile

STRONG = math.log(100)


def flagged_ids(reference: ChannelReference, items: pd.DataFrame) -> set[str]:
    profiles = np.stack([channel_profile(load_audio(p, 16000)) for p in items.audio])
    return set(items.id[reference.distances(profiles) > reference.threshold_])


def measure(reference: ChannelReference, folder: Path) -> str:
    items = pd.read_csv(folder / "all.csv", dtype=str)
    scores = pd.read_csv(folder / "scores_pop0" / "scores.csv", sep="\t", dtype={0: str, 1: str})
    speaker = items.set_index("id").speaker
    flagged = flagged_ids(reference, items)
    different = speaker[scores.enrollment].to_numpy() != speaker[scores.test].to_numpy()
    warned = scores.enrollment.isin(flagged).to_numpy() | scores.test.isin(flagged).to_numpy()
    strong = different & (scores.scores.to_numpy() > STRONG)
    kept = different & ~warned
    rate = strong[kept].mean() if kept.any() else float("nan")
    return (
        f"{len(flagged) / len(items):6.1%} recordings, {warned.mean():6.1%} trials warned; "
        f"different-speaker LR > 100: {strong[different].mean():6.2%} of all, "
        f"{rate:6.2%} of the {kept.sum()} un-warned ({strong[kept].sum()} trials)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path(__file__).resolve().parents[2] / "runs")
    args = parser.parse_args()
    reference = ChannelReference.load(defaults.CHANNEL_REFERENCE)
    for corpus in ("librispeech", "speechocean", "commonvoice"):
        for variant in ("orig", "telephone", "hall"):
            folder = args.runs / "population_robustness" / corpus / variant
            if (folder / "scores_pop0" / "scores.csv").is_file():
                print(f"{corpus:12s} {variant:9s} {measure(reference, folder)}", flush=True)


if __name__ == "__main__":
    main()
