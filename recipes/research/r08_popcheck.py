"""Research (issue 18), item 4: the population check of `compare`.

For a trial (e, t) with calibrated LLR c and a population of K speakers (recordings P,
drawn from the same test set, disjoint from the trial's speakers), each side is compared
with every population recording by the same chain. Statistics (shares of the population
whose LR reaches the case LR, i.e. empirical false-alarm rates at the case LR):
  spk_t   share of population speakers q with max_{p in q} LLR(t, p) >= c
  spk_e   the same for the enrollment side
  spk     max(spk_e, spk_t)          spk_mean  (spk_e + spk_t) / 2
  rec     share of population recordings p with LLR(e, p) >= c or LLR(t, p) >= c (both sides
          pooled: (count_e + count_t) / 2|P|)
A trial with LR > 1 is flagged "not exceptional" when the statistic >= a threshold (an LR
below 1 needs no such check: it supports the different-speaker proposition).
Measured per test set (LS/SO/CV test parts, original and channel variants), K = 5 and 20
(3 draws), for three chains: the shipped BA-LR chain (no adaptation), the population-
adapted BA-LR chain (typicality refitted on the population with shrinkage, tau 30, and its
calibration refitted the same way), the shipped cosine chain. Reported: share of
misleading different-speaker trials (LR > 100) flagged, share of same-speaker trials with
LR > 100 (sound strong evidence) and of all same-speaker trials flagged, the flag rate
among trials with LR > 1, and LR > 100 among un-flagged different-speaker trials.
Usage: r08_popcheck.py [--cache DIR] [--seeds 3]   (log: r08_popcheck.log)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r08_common import (  # noqa: E402
    FITTED,
    LN100,
    SHORT,
    VARIANTS,
    Shipped,
    Tee,
    adapted_alpha,
    base_args,
    beta_from_alpha,
    beta_matrix,
    binarize,
    cosine,
    draw_population,
    fit_cal,
    load_data,
    pairs_of,
    select,
)

TAU = 30.0
THRESHOLDS = (0.05, 0.10, 0.20)


def adapted_calibration(sh, items, emb, k, seed):
    """qmf refitted on the cal trials with typicality adapted per corpus to K ref speakers."""
    sc, yc, gc, dc = [], [], [], []
    speech = items.speech.to_numpy()
    for corpus in FITTED:
        ref = select(items, corpus, "ref")
        pop = draw_population(items, ref, k, seed)[0]
        rows = select(items, corpus, "cal")
        a, b, y = pairs_of(items, rows)
        beta = beta_from_alpha(adapted_alpha(sh.beta.alpha_, binarize(sh.bae, emb[pop]), TAU))
        sc.append(beta_matrix(beta, binarize(sh.bae, emb[rows]))[a, b])
        yc.append(y)
        gc.append(np.full(len(y), corpus))
        dc.append(np.stack([speech[rows][a], speech[rows][b]], 1))
    return fit_cal(
        "qmf", np.concatenate(sc), np.concatenate(yc), np.concatenate(gc), np.concatenate(dc)
    )


def chain_llrs(kind, sh, items, emb, pop, rows, cal_adapted):
    """LLR matrices rows x rows and rows x pop of a chain (calibrated)."""
    speech = items.speech.to_numpy()
    sr, sp = speech[rows], speech[pop]
    if kind == "cosine":
        x, p = emb[rows], emb[pop]
        return sh.cal_cos.transform(cosine(x)), sh.cal_cos.transform(cosine(x, p))
    bits, pbits = binarize(sh.bae, emb[rows]), binarize(sh.bae, emb[pop])
    if kind == "balr_ship":
        beta, cal = sh.beta, sh.cal
    else:
        beta = beta_from_alpha(adapted_alpha(sh.beta.alpha_, pbits, TAU))
        cal = cal_adapted
    rr = beta_matrix(beta, bits)
    rp = beta_matrix(beta, bits, pbits)

    def calib(raw, d1, d2):
        d = np.stack(np.broadcast_arrays(d1[:, None], d2[None, :]), -1).reshape(-1, 2)
        return cal.transform(raw.reshape(-1), d).reshape(raw.shape)

    return calib(rr, sr, sr), calib(rp, sr, sp)


def check_stats(L, Lp, pop_spk, a, b):
    c = L[a, b]
    names, inv = np.unique(pop_spk, return_inverse=True)
    # per scored recording and population speaker: best LLR over that speaker's recordings
    M = np.full((len(L), len(names)), -np.inf)
    for q in range(len(names)):
        M[:, q] = Lp[:, inv == q].max(1)
    spk_e = (M[a] >= c[:, None]).mean(1)
    spk_t = (M[b] >= c[:, None]).mean(1)
    rec = ((Lp[a] >= c[:, None]).sum(1) + (Lp[b] >= c[:, None]).sum(1)) / (2 * Lp.shape[1])
    return c, {"spk": np.maximum(spk_e, spk_t), "spk_mean": (spk_e + spk_t) / 2, "rec": rec}


def main():
    ap = base_args(__doc__)
    args = ap.parse_args()
    log = Tee(Path(__file__).with_suffix(".log"))
    items, emb = load_data(args.cache)
    sh = Shipped()
    rows_out = []
    for k in (5, 20):
        for seed in range(args.seeds):
            cal_ad = adapted_calibration(sh, items, emb, k, seed)
            for corpus in FITTED:
                for variant in VARIANTS:
                    index = select(items, corpus, "test", variant)
                    pop, rows = draw_population(items, index, k, seed)
                    a, b, y = pairs_of(items, rows)
                    pop_spk = items.speaker.to_numpy()[pop]
                    for kind in ("balr_ship", "balr_adapted", "cosine"):
                        L, Lp = chain_llrs(kind, sh, items, emb, pop, rows, cal_ad)
                        c, stats = check_stats(L, Lp, pop_spk, a, b)
                        bad = (y == 0) & (c > LN100)
                        strong_tar = (y == 1) & (c > LN100)
                        for stat, v in stats.items():
                            for thr in THRESHOLDS:
                                flag = (c > 0) & (v >= thr)  # only LRs supporting same speaker
                                rows_out.append(dict(
                                    k=k, seed=seed, corpus=corpus, variant=variant, chain=kind,
                                    stat=stat, thr=thr,
                                    n_bad=int(bad.sum()), n_non=int((y == 0).sum()),
                                    bad_rate=100 * bad.sum() / max((y == 0).sum(), 1),
                                    det=100 * flag[bad].mean() if bad.any() else np.nan,
                                    fa_strong_tar=100 * flag[strong_tar].mean() if strong_tar.any() else np.nan,
                                    fa_tar=100 * flag[y == 1].mean(),
                                    flag_all=100 * flag[c > 0].mean(),
                                    bad_unflagged=100 * (bad & ~flag).sum() / max(((y == 0) & ~flag).sum(), 1),
                                ))  # fmt: skip
            log(f"  k={k} seed={seed} done ({log.elapsed()})")
    df = pd.DataFrame(rows_out)
    df.to_csv(args.cache / "r08" / "popcheck.csv", index=False)
    log("# r08_popcheck: flagging misleading LRs with the population check")
    log(
        "Cells (mean over 3 draws): bad = different-speaker LR > 100 (% of diff trials); det = % of those"
    )
    log(
        "flagged; fa+ = % of same-speaker trials with LR > 100 flagged; fa = % of all same-speaker trials"
    )
    log(
        "flagged; all = % of trials with LR > 1 flagged; left = LR > 100 among un-flagged diff trials (%)."
    )
    g = df.groupby(["chain", "stat", "thr", "k", "corpus", "variant"]).mean(numeric_only=True)
    for chain in ("balr_ship", "balr_adapted", "cosine"):
        for stat in ("spk", "spk_mean", "rec"):
            for thr in THRESHOLDS:
                log(f"\n## chain {chain}, statistic {stat} >= {thr:.2f}")
                log(
                    f"{'K':>3s} {'set':10s} {'bad':>6s} {'det':>6s} {'fa+':>6s} {'fa':>6s} {'all':>6s} {'left':>6s}"
                )
                for k in (5, 20):
                    for corpus in FITTED:
                        for variant in VARIANTS:
                            r = g.loc[(chain, stat, thr, k, corpus, variant)]
                            log(f"{k:3d} {SHORT[corpus] + ' ' + variant:10s} {r.bad_rate:6.2f} {r.det:6.1f} "
                                f"{r.fa_strong_tar:6.1f} {r.fa_tar:6.1f} {r.flag_all:6.1f} {r.bad_unflagged:6.2f}")  # fmt: skip
    log(f"done in {log.elapsed()}")


if __name__ == "__main__":
    main()
