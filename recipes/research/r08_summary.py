"""Research (issue 18): target check and markdown tables from the r08_population results.

Reads CACHE/r08/population_cosine.csv and population_balr.csv (written by
r08_population.py) and, per candidate and population setting, checks the issue's targets
on every held-out set (LS / SO / CV test parts, original and channel variants), means over
draws:
  T1 BA-LR Cllr < 0.4            T2 different-speaker LR > 100 < 1 %
  T3 same-speaker LR < 1/100 < 1 %
  T4 EER no worse than without population (<= 5 % relative or 0.5 point): BA-LR EER
     against the shipped chain's (`ship`), and the cosine EER of the adapted embeddings
     against the plain cosine (`none`), on the same trials
  T5 BA-LR EER <= 2 x the cosine EER of the same adapted embeddings
Also the calibration loss Cllr - minCllr. Usage: r08_summary.py [--cache DIR] (log:
r08_summary.log)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r08_common import FITTED, SHORT, VARIANTS, Tee, base_args  # noqa: E402

SETS = [(c, v) for c in FITTED for v in VARIANTS]
KS = ("2", "3", "5", "10", "20", "half", "5x1", "20x1")


def load(cache):
    frames = []
    for part in ("cosine", "balr"):
        path = cache / "r08" / f"population_{part}.csv"
        if path.is_file():
            frames.append(pd.read_csv(path, dtype={"k": str}))
    return pd.concat(frames, ignore_index=True)


def per_draw_targets(df):
    """Per row: the T4 baselines joined from the same (set, k, seed)."""
    key = ["corpus", "variant", "k", "seed"]
    ship = df[(df.system == "balr") & (df.method == "ship")][key + ["eer"]].rename(
        columns={"eer": "eer_ship"}
    )
    none = df[(df.system == "cosine") & (df.method == "none")][key + ["eer"]].rename(
        columns={"eer": "cos_none"}
    )
    out = df.merge(ship, on=key, how="left").merge(none, on=key, how="left")
    return out


def ok_eer(new, base):
    return (new <= base * 1.05) | (new <= base + 0.5)


def main():
    ap = base_args(__doc__)
    args = ap.parse_args()
    log = Tee(Path(__file__).with_suffix(".log"))
    df = per_draw_targets(load(args.cache))
    g = (
        df.groupby(["system", "method", "k", "corpus", "variant"])
        .mean(numeric_only=True)
        .reset_index()
    )
    log("# r08_summary: targets of issue 18 per candidate (means over draws; sets: LS/SO/CV test parts x "
        "orig/phone/telephone/hall; SO/CV lossy Opus; LS same-speaker = segments of one utterance)")  # fmt: skip
    log("T1 Cllr<0.4 | T2 non LR>100 <1% | T3 tar LR<1/100 <1% | T4 EER not worse (BA-LR vs ship; cosine vs none) | "
        "T5 BA-LR EER <= 2x cosine EER; each: number of the 12 sets meeting it; worst value in brackets")  # fmt: skip
    for system in ("cosine", "balr"):
        for k in KS:
            d = g[(g.system == system) & (g.k == k)]
            if d.empty:
                continue
            log(f"\n## {system}, K = {k}")
            log(
                f"{'method':24s} {'T1 Cllr':>14s} {'T2 non100':>14s} {'T3 tar100':>14s} {'T4 EER':>16s} {'T5 ratio':>14s} {'loss':>7s}"
            )
            for method in list(dict.fromkeys(d.method)):
                m = d[d.method == method]
                if len(m) < len(SETS):
                    continue
                t1 = (m.cllr < 0.4).sum(), m.cllr.max()
                t2 = (m.non100 < 1).sum(), m.non100.max()
                t3 = (m.tar100 < 1).sum(), m.tar100.max()
                if system == "balr":
                    rel = m.eer / m.eer_ship
                    t4 = ok_eer(m.eer, m.eer_ship).sum(), rel.max()
                    ratio = m.eer / m.cos_eer
                    t5 = (ratio <= 2).sum(), ratio.max()
                else:
                    rel = m.cos_eer / m.cos_none
                    t4 = ok_eer(m.cos_eer, m.cos_none).sum(), rel.max()
                    t5 = (0, np.nan)
                loss = (m.cllr - m.min_cllr).max()
                log(f"{method:24s} {t1[0]:4d} ({t1[1]:6.3f}) {t2[0]:4d} ({t2[1]:6.2f}) {t3[0]:4d} ({t3[1]:6.2f}) "
                    f"{t4[0]:4d} (x{t4[1]:5.2f}) {t5[0]:4d} (x{t5[1]:4.2f}) {loss:7.3f}")  # fmt: skip
    # markdown tables of the main candidates
    log("\n## markdown: Cllr / EER % per set (means over draws)")
    head = "| method | K | " + " | ".join(f"{SHORT[c]} {v}" for c, v in SETS) + " |"
    for system in ("cosine", "balr"):
        log(f"\n### {system}\n")
        log(head)
        log("|" + " --- |" * (len(SETS) + 2))
        for k in ("5", "20", "half"):
            d = g[(g.system == system) & (g.k == k)]
            for method in list(dict.fromkeys(d.method)):
                m = d[d.method == method].set_index(["corpus", "variant"])
                if len(m) < len(SETS):
                    continue
                cells = [f"{m.loc[s, 'cllr']:.3f} / {m.loc[s, 'eer']:.1f}" for s in SETS]
                log(f"| {method} | {k} | " + " | ".join(cells) + " |")
    log(f"\ndone in {log.elapsed()}")


if __name__ == "__main__":
    main()
