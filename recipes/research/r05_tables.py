"""Research (issue 13): markdown tables of the cached results (ablation, calibration, warning)."""

from __future__ import annotations

import pandas as pd
from rcommon import CACHE

TESTS = ["librispeech", "speechocean", "commonvoice", "voxceleb"]


def md(frame: pd.DataFrame) -> str:
    return frame.to_string()  # tabulate (to_markdown) is not in the venv


def main():
    ab = pd.read_csv(CACHE / "ablation.csv")
    eer = ab.pivot_table(index=["variant", "scorer"], columns="test", values="eer", sort=False)[
        TESTS
    ]
    act = ab.groupby("variant", sort=False).active.mean()
    base = eer.loc[("cosine_emb", "cosine")]
    table = (eer * 100).round(2)
    table["active"] = [act.get(v, float("nan")) for v, _ in table.index]
    table["max ratio"] = (eer / base).max(axis=1).round(2)
    print("## EER % on test parts (ratio to raw-cosine EER)\n")
    print(md(table.round(3)))
    cal = pd.read_csv(CACHE / "calibration.csv")
    for fold in cal.fold.unique():
        f = cal[cal.fold == fold].set_index(["system", "method", "test"])
        cols = ["eer", "cllr", "min_cllr", "non_gt100", "tar_lt001", "cllr_in", "cllr_out"]
        f = f[[c for c in cols if c in f]].copy()
        for c in ("eer", "non_gt100", "tar_lt001"):
            f[c] = (f[c] * 100).round(2)
        print(f"\n## fold {fold} (left out of every fit: {fold})\n")
        print(md(f.round(3)))
    print("\n## warning\n")
    print(md(pd.read_csv(CACHE / "warning.csv").round(3)))


if __name__ == "__main__":
    main()
