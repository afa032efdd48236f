"""r15: after the typicality adaptation, should the LLRs also be offset to the calibration's
reference median (as the unadapted ones are where the bound holds)?

On the folders of `benchmarks/population_robustness.py` (run it first) where `score test`
adapted to the population (its metrics.json says so), the population's own different-speaker
pairs are scored with the adapted beta scorer and the shipped calibration, two ways:
- `in-sample`: adapted to the whole population (both speakers of each pair in it);
- `leave-two-out`: each pair adapted to the population without its two speakers (the
  per-trial machinery of `score test`, without its size check).
The offset `clip(reference median - population median, +-MAX)` is added before the ELUB
bounds (`Calibrator.shifted`), and the trials' figures are compared with the adapted LLRs
as shipped.

    python recipes/research/r15_adapted_offset.py [--work runs/population_robustness]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from balr import defaults
from balr.data import AudioDataset
from balr.data.speech import load_speech_durations, trial_seconds
from balr.data.trials import Trials
from balr.evaluation.metrics import cllr, eer, min_cllr, misleading_shares
from balr.population import adapt_to_population, read_population
from balr.population_decision import different_speaker_pairs, shipped_reference_median
from balr.scoring.beta import BetaScorer
from balr.scoring.population_trials import TrialPopulations, TrialwiseBeta
from balr.scoring.selection import CalibrationChoice
from balr.scoring.trials import TrialCells

REPO = Path(__file__).resolve().parents[2]


def population_llrs(folder: Path, size: int, scorer, calibrator, how: str) -> np.ndarray:
    """Calibrated LLRs of the population's different-speaker pairs, adapted `how`."""
    population = read_population(
        AudioDataset.from_path(folder / f"pop{size}.csv", output_dir=folder / "vectors"), "pop"
    )
    i, j = different_speaker_pairs(population)
    bits = population.bits
    if how == "in-sample":
        raw = adapt_to_population(scorer, population)[0].score(bits[i], bits[j])
    else:
        ids = population.ids
        speaker_of = dict(zip(ids, population.speakers, strict=True))
        pops = TrialPopulations.of_sides(
            population, [[ids[a]] for a in i], [[ids[b]] for b in j], speaker_of
        )
        counts = np.stack([bits, 1 - bits], axis=2)
        raw = TrialwiseBeta(scorer, pops).score(counts, TrialCells(i[:, None], j[:, None]))
    durations = load_speech_durations(None, folder / "vectors") or {}
    seconds = np.array([durations.get(x, np.nan) for x in population.ids])
    return calibrator.transform(raw, np.column_stack([seconds[i], seconds[j]]))


def trial_figures(llr: np.ndarray, labels: np.ndarray) -> dict:
    keep = np.isfinite(llr)
    llr, labels = llr[keep], labels[keep]
    shares = misleading_shares(llr, labels)
    return {
        "eer": eer(llr, labels)[0],
        "cllr": cllr(llr, labels),
        "min_cllr": min_cllr(llr, labels),
        "non100": shares["nontarget_lr_above_100"],
        "tar100": shares["target_lr_below_0.01"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "population_robustness")
    ap.add_argument("--max-offset", type=float, default=1.0)
    options = ap.parse_args()
    scorer = BetaScorer.load(defaults.SCORER_CHECKPOINT)
    choice = CalibrationChoice.from_file(defaults.CALIBRATION)
    reference = shipped_reference_median(str(defaults.CALIBRATION), choice.calibrator.groups_)
    print(f"reference median {reference:.2f}; offsets clipped at +-{options.max_offset}")
    print("| folder | population | LLRs | offset | EER | Cllr | minCllr | non>100 | tar<1/100 |")
    for folder in sorted(p.parent for p in options.work.glob("*/*/extracted")):
        items = pd.read_csv(folder / "all.csv", dtype=str)
        speaker = dict(zip(items["id"], items["speaker"], strict=True))
        for size in (5, 20):
            out = folder / f"scores_pop{size}"
            if not (out / "metrics.json").is_file():
                continue
            record = json.loads((out / "metrics.json").read_text())["population"]
            if not record.get("adaptation", {}).get("adapted", True):
                continue
            frame = pd.read_csv(
                out / "scores.csv", sep="\t", dtype={"enrollment": str, "test": str}
            )
            labels = (frame["enrollment"].map(speaker) == frame["test"].map(speaker)).to_numpy(int)
            rows = [("adapted (shipped)", 0.0, frame["scores"].to_numpy(float))]
            trials = Trials(frame, [[e] for e in frame["enrollment"]], [[t] for t in frame["test"]])
            seconds = trial_seconds(trials, load_speech_durations(None, folder / "vectors"))
            raw = frame["raw_score"].to_numpy(float)
            for how in ("in-sample", "leave-two-out"):
                pop = population_llrs(folder, size, scorer, choice.calibrator, how)
                median = float(np.median(pop[np.isfinite(pop)]))
                offset = float(np.clip(reference - median, -options.max_offset, options.max_offset))
                shifted = choice.calibrator.shifted(offset).transform(raw, seconds)
                rows.append((f"+ offset, {how} (median {median:.2f})", offset, shifted))
            for name, offset, llr in rows:
                f = trial_figures(llr, labels)
                where = f"{folder.parent.name}/{folder.name}"
                print(f"| {where} | {size} | {name} | {offset:+.2f} | {100 * f['eer']:.2f} % | "
                      f"{f['cllr']:.3f} | {f['min_cllr']:.3f} | {100 * f['non100']:.2f} % | "
                      f"{100 * f['tar100']:.2f} % |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
