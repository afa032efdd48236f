"""r16: BA-LR on embeddings moved to the reference mean before the shipped encoder.

The cosine keeps its calibration's scale when each embedding is moved from the population's
mean to the calibration recordings' mean (r14). Does the BA-LR chain profit the same way,
with the shipped encoder, scorer and calibration unchanged: bits = BAE(x - mean(population)
+ mean(reference))? On the folders of `benchmarks/population_robustness.py` (run it first),
trials and populations as there (speaker-disjoint, so no per-trial exclusion is needed):

- `shipped`: the bits `balr binarize` wrote, the shipped scorer and calibration (no
  population: the benchmark's `none` row);
- `typicality`: the product's adaptation (`--population-adapt always`): the beta scorer's
  typicality refitted on the population's bits, T = 10;
- `moved`: bits of the moved embeddings, the shipped scorer;
- `moved+typicality`: bits of the moved embeddings, the typicality refitted on the moved
  population's bits.

The reference mean is that of the shipped cosine calibration's reference embeddings (the
GE2E embeddings of the 1,521 calibration recordings of the three corpora the encoder was
trained on).

    python recipes/research/r16_moved_embeddings_balr.py [--work runs/population_robustness]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from balr import defaults
from balr.binary_attributes.encoder_numpy import NumpyEncoder
from balr.data import AudioDataset
from balr.data.speech import load_speech_durations
from balr.evaluation.metrics import cllr, eer, min_cllr, misleading_shares
from balr.population import PopulationAdaptation
from balr.scoring.beta import BetaScorer
from balr.scoring.selection import CalibrationChoice

REPO = Path(__file__).resolve().parents[2]


def figures(llr: np.ndarray, labels: np.ndarray, bits: np.ndarray) -> str:
    """EER, Cllr, minCllr, misleading shares and the share of active bits, as table cells."""
    keep = np.isfinite(llr)
    llr, labels = llr[keep], labels[keep]
    shares = misleading_shares(llr, labels)
    return (
        f"{100 * eer(llr, labels)[0]:.2f} % | {cllr(llr, labels):.3f} | "
        f"{min_cllr(llr, labels):.3f} | {100 * shares['nontarget_lr_above_100']:.2f} % | "
        f"{100 * shares['target_lr_below_0.01']:.2f} % | {100 * bits.mean():.1f} %"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "population_robustness")
    options = ap.parse_args()
    encoder = NumpyEncoder.load(defaults.BAE_CHECKPOINT)
    scorer = BetaScorer.load(defaults.SCORER_CHECKPOINT)
    calibrator = CalibrationChoice.from_file(defaults.CALIBRATION).calibrator
    cosine = CalibrationChoice.from_file(defaults.COSINE_CALIBRATION)
    reference = cosine.conditions.reference_vectors_.astype(np.float64).mean(axis=0)
    ref_rate = float(
        encoder.binarize(cosine.conditions.reference_vectors_.astype(np.float32))[..., 0].mean()
    )
    print(f"reference recordings' bits on: {100 * ref_rate:.1f} %")
    print("| folder | population | chain | EER | Cllr | minCllr | non>100 | tar<1/100 | bits on |")
    for folder in sorted(p.parent for p in options.work.glob("*/*/extracted")):
        run_folder(folder, encoder, scorer, calibrator, reference)


def run_folder(folder: Path, encoder, scorer: BetaScorer, calibrator, reference) -> None:
    """The four chains' rows of one benchmark folder."""
    dataset = AudioDataset.from_path(folder / "all.csv", output_dir=folder / "vectors")
    rows, emb = dataset.stack_vectors("emb")
    ba_rows, ba = dataset.stack_vectors("ba")
    assert list(rows) == list(ba_rows)
    ids = [dataset.items[r].id for r in rows]
    speaker = {dataset.items[r].id: dataset.items[r].speaker for r in rows}
    row_of = {item: k for k, item in enumerate(ids)}
    trials = pd.read_csv(folder / "trials.tsv", sep="\t", dtype=str)
    keep = trials["enrollment"].isin(row_of) & trials["test"].isin(row_of)
    trials = trials[keep]
    e = trials["enrollment"].map(row_of).to_numpy()
    t = trials["test"].map(row_of).to_numpy()
    labels = (trials["enrollment"].map(speaker) == trials["test"].map(speaker)).to_numpy(int)
    durations = load_speech_durations(None, folder / "vectors") or {}
    seconds = np.array([durations.get(i, np.nan) for i in ids])
    sides = np.column_stack([seconds[e], seconds[t]])
    shipped_bits = np.asarray(ba, dtype=np.float64)[..., 0]

    def row(size, chain: str, bits: np.ndarray, beta: BetaScorer) -> None:
        llr = calibrator.transform(beta.score(bits[e], bits[t]), sides)
        where = f"{folder.parent.name}/{folder.name}"
        print(f"| {where} | {size} | {chain} | {figures(llr, labels, bits)} |", flush=True)

    row("none", "shipped", shipped_bits, scorer)
    for size in (5, 20):
        pop_ids = set(pd.read_csv(folder / f"pop{size}.csv", dtype=str)["id"])
        in_pop = np.array([i in pop_ids for i in ids])
        typical = PopulationAdaptation().fit(shipped_bits[in_pop]).adapt(scorer)
        row(size, "typicality", shipped_bits, typical)
        moved = emb - emb[in_pop].mean(axis=0) + reference
        moved_bits = encoder.binarize(moved.astype(np.float32))[..., 0].astype(np.float64)
        row(size, "moved", moved_bits, scorer)
        both = PopulationAdaptation().fit(moved_bits[in_pop]).adapt(scorer)
        row(size, "moved+typicality", moved_bits, both)


if __name__ == "__main__":
    main()
