"""r14: `score test scorer=cosine scorer.vectors=emb --population` on the held-out folders of
`benchmarks/population_robustness.py` (run it first: it extracts the vectors), through the
CLI as a user would, with the shipped cosine calibration.

Per corpus, variant and population (none, 5, 20 speakers; `auto` and `always`): EER, Cllr,
minCllr, different-speaker LR > 100 and same-speaker LR < 1/100 of the calibrated cosine,
and whether `auto` adapted. Uncalibrated (`--no-calibration`) centring on 0 is the EER of
the issue's recipe, for comparison.

    python recipes/research/r14_cosine_population.py [--work runs/population_robustness]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from balr.evaluation.metrics import cllr, eer, min_cllr, misleading_shares

REPO = Path(__file__).resolve().parents[2]
COSINE = ("scorer=cosine", "scorer.vectors=emb")


def score(folder: Path, name: str, *args: str) -> pd.DataFrame:
    """scores.csv of one cached `balr score test` run of the cosine of embeddings."""
    out = folder / f"r14_{name}"
    if not (out / "scores.csv").is_file():
        command = [sys.executable, "-m", "balr.cli.main", "score", "test", folder / "all.csv",
                   folder / "trials.tsv", "--save-dir", out, "--vectors-dir", folder / "vectors",
                   "--exist-ok", "--same-recording-by-id", *COSINE, *args]  # fmt: skip
        done = subprocess.run(list(map(str, command)), capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
    return pd.read_csv(out / "scores.csv", sep="\t", dtype={"enrollment": str, "test": str})


def figures(frame: pd.DataFrame, speaker: dict[str, str], calibrated: bool) -> dict:
    labels = (frame["enrollment"].map(speaker) == frame["test"].map(speaker)).to_numpy(np.int64)
    llr = frame["scores"].to_numpy(np.float64)
    keep = np.isfinite(llr)
    llr, labels = llr[keep], labels[keep]
    row = {"eer": eer(llr, labels)[0]}
    if calibrated:
        row |= {"cllr": cllr(llr, labels), "min_cllr": min_cllr(llr, labels)}
        row |= misleading_shares(llr, labels)
    return row


def adapted(folder: Path, name: str) -> str:
    record = json.loads((folder / f"r14_{name}" / "metrics.json").read_text()).get("population")
    if not record:
        return "-"
    return "yes" if record.get("adaptation", {}).get("adapted", True) else "no"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "population_robustness")
    options = ap.parse_args()
    print("| folder | population | mode | adapted | EER | Cllr | minCllr | non>100 | tar<1/100 "
          "| EER centred on 0, uncalibrated |")  # fmt: skip
    for folder in sorted(p.parent for p in options.work.glob("*/*/extracted")):
        items = pd.read_csv(folder / "all.csv", dtype=str)
        speaker = dict(zip(items["id"], items["speaker"], strict=True))
        sizes = [0] + [s for s in (5, 20) if (folder / f"pop{s}.csv").is_file()]
        for size in sizes:
            for mode in ("auto", "always") if size else ("auto",):
                name = f"pop{size}_{mode}"
                pop = ["--population", str(folder / f"pop{size}.csv")] if size else []
                frame = score(folder, name, *pop, "--population-adapt", mode)
                row = figures(frame, speaker, True)
                raw = score(folder, f"pop{size}_raw", *pop, "--no-calibration")
                eer0 = figures(raw, speaker, False)["eer"]
                print(
                    f"| {folder.parent.name}/{folder.name} | {size or 'none'} | {mode} | "
                    f"{adapted(folder, name)} | {100 * row['eer']:.2f} % | {row['cllr']:.3f} | "
                    f"{row['min_cllr']:.3f} | {100 * row['nontarget_lr_above_100']:.2f} % | "
                    f"{100 * row['target_lr_below_0.01']:.2f} % | {100 * eer0:.2f} % |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
