"""Research (issue 13), steps 4-5: condition-aware calibration and the out-of-conditions
warning, with leave-one-corpus-out folds.

Fold `none` fits everything on all three splittable corpora; fold X (librispeech,
speechocean, commonvoice) leaves X out of EVERY fit: BAE training (enc), reference
population / cohort (ref), calibration (cal), and the condition description. Figures are on
the test parts of all four corpora (VoxCeleb is never fitted on). Two systems: `balr` (BAE
variant given by --bae, beta scorer) and `cosine` (cosine of GE2E embeddings).

Calibrators (fit on cal trials, each corpus weighted equally, classes balanced):
  logistic   llr = a s + b
  pav        monotone map of s (balr.calibration, lir)
  q_dur      + c1 dmin + c2 dmax               (log speech seconds of the shorter/longer side)
  q_coh      + c3 (m_e + m_t)                  (mean of top-K cohort scores of each side)
  q_full     + c1 dmin + c2 dmax + c3 (m_e+m_t) + c4 |m_e - m_t|
  q_full_sl  q_full with slope a + a1 dmin     (slope modulated by duration)
  asnorm     logistic on the adaptive s-norm score
All linear maps are clipped to ELUB bounds (lir) on the calibration trials like the library.
Warning: per recording, in conditions iff log speech duration within the [0.5, 99.5] %
range of the calibration recordings and kNN similarity (mean cosine of the 10 nearest
calibration-population embeddings, other speakers) above its P-th percentile on the
calibration recordings; a trial is in conditions iff both sides are.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from rcommon import (
    CACHE,
    TEST_SETS,
    binarize,
    fast_elub,
    fit_scorer,
    load,
    lr_matrix,
    metrics,
    part_index,
    train_bae,
    trials,
)
from scipy.optimize import minimize

from balr.calibration import LN10, make_calibrator
from balr.scoring.pairs import unit_rows

SPLITTABLE = ("librispeech", "speechocean", "commonvoice")
TOPK = 100
KNN = 10


# ---------------------------------------------------------------- logistic with features
def fit_logistic(X, y, w, l2=1e-4):
    """Weighted logistic regression; returns (coef, intercept) on raw features."""
    mu, sd = X.mean(0), X.std(0) + 1e-12
    Z = (X - mu) / sd
    w = w / w.sum()
    sgn = 2 * y - 1

    def f(theta):
        z = Z @ theta[:-1] + theta[-1]
        loss = np.sum(w * np.logaddexp(0, -sgn * z)) + l2 * np.sum(theta[:-1] ** 2)
        p = -sgn * np.exp(-np.logaddexp(0, sgn * z))  # d loss / dz
        g = np.concatenate([Z.T @ (w * p) + 2 * l2 * theta[:-1], [np.sum(w * p)]])
        return loss, g

    theta = minimize(f, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B").x
    coef = theta[:-1] / sd
    return coef, float(theta[-1] - coef @ mu)


def trial_weights(corpus, y):
    """Each corpus equal weight, target and non-target classes balanced inside each."""
    w = np.zeros(len(y))
    for c in np.unique(corpus):
        for lab in (0, 1):
            m = (corpus == c) & (y == lab)
            w[m] = 1.0 / max(m.sum(), 1)
    return w


def features(kind, t):
    s, dmin, dmax, ms, md = (
        t["s"],
        t["dmin"],
        t["dmax"],
        t["me"] + t["mt"],
        np.abs(t["me"] - t["mt"]),
    )
    return {
        "logistic": [s],
        "q_dur": [s, dmin, dmax],
        "q_coh": [s, ms],
        "q_full": [s, dmin, dmax, ms, md],
        "q_full_sl": [s, s * dmin, dmin, dmax, ms, md],
        "asnorm": [t["snorm"]],
    }[kind]


METHODS = (
    "logistic",
    "pav",
    "q_dur",
    "q_coh",
    "q_full",
    "q_full_sl",
    "asnorm",
    "q_dur_c",
    "q_coh_c",
    "q_full_c",
)
QUALITY = ("dmin", "dmax", "me", "mt")


class Cal:
    def __init__(self, kind, cal):
        # `_c`: quality measures clamped to their [0.5, 99.5] % range on the calibration
        # trials before use, so the offset never extrapolates beyond what was fitted
        self.clamp = kind.endswith("_c")
        kind = kind.removesuffix("_c")
        self.kind = kind
        self.ranges = {q: np.percentile(cal[q], [0.5, 99.5]) for q in QUALITY}
        cal = self._clamped(cal)
        y = cal["y"]
        if kind == "pav":
            self.pav = make_calibrator("pav", bounded=False).fit(cal["s"], y)
            lo, hi = fast_elub(self.pav.transform(cal["s"]) / LN10, y)
            self.pav.lower_bound_, self.pav.upper_bound_ = lo * LN10, hi * LN10
            return
        X = np.stack(features(kind, cal), 1)
        self.coef, self.b = fit_logistic(X, y, trial_weights(cal["corpus"], y))
        raw = X @ self.coef + self.b
        lo, hi = fast_elub(raw / LN10, y)
        self.lo, self.hi = lo * LN10, hi * LN10

    def _clamped(self, t):
        if not self.clamp:
            return t
        return {**t, **{q: np.clip(t[q], *self.ranges[q]) for q in QUALITY}}

    def __call__(self, t):
        t = self._clamped(t)
        if self.kind == "pav":
            return self.pav.transform(t["s"])
        X = np.stack(features(self.kind, t), 1)
        return np.clip(X @ self.coef + self.b, self.lo, self.hi)


# ---------------------------------------------------------------- per-system trial tables
def cohort_stats(score_fn, idx, cohort_idx, spk):
    """Mean and std of each item's TOPK highest scores against the cohort (other speakers)."""
    mat = score_fn(idx, cohort_idx)
    mat = np.where(spk[idx][:, None] == spk[cohort_idx][None, :], -np.inf, mat)
    top = -np.sort(-mat, axis=1)[:, :TOPK]
    return top.mean(1), top.std(1) + 1e-9


def trial_table(items, idx, score_fn, qual, stats):
    i, j, y = trials(items, idx)
    mat = score_fn(idx, idx)
    pos = np.empty(idx.max() + 1, np.intp)
    pos[idx] = np.arange(len(idx))
    s = mat[pos[i], pos[j]]
    mean, std = stats
    mi, mj, si, sj = mean[pos[i]], mean[pos[j]], std[pos[i]], std[pos[j]]
    de, dt = qual[i], qual[j]
    return {
        "s": s,
        "y": y,
        "dmin": np.minimum(de, dt),
        "dmax": np.maximum(de, dt),
        "me": mi,
        "mt": mj,
        "snorm": 0.5 * ((s - mi) / si + (s - mj) / sj),
        "corpus": items.corpus.to_numpy()[i],
        "i": i,
        "j": j,
    }


def concat(tables):
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


# ---------------------------------------------------------------- warning
def knn_similarity(emb_unit, query, pop, spk, k=KNN):
    sim = emb_unit[query] @ emb_unit[pop].T
    sim = np.where(spk[query][:, None] == spk[pop][None, :], -np.inf, sim)
    return -np.sort(-sim, axis=1)[:, :k].mean(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bae", default="bae_nosparsity", help="a VARIANTS name of r03")
    ap.add_argument("--folds", nargs="*", default=["none", *SPLITTABLE])
    ap.add_argument("--percentile", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import r03_bae_ablation as r03

    _, _, overrides, epochs = r03.VARIANTS[args.bae]
    items, emb = load()
    spk = items.speaker.to_numpy()
    qual = np.log(np.maximum(items.speech_s.to_numpy(), 0.3))
    eu = unit_rows(emb.astype(np.float64))
    rows, warn_rows, coefs = [], [], {}
    for fold in args.folds:
        t0 = time.perf_counter()
        pop = tuple(c for c in SPLITTABLE if c != fold)
        enc = part_index(items, part="enc", corpora=pop)
        ref = part_index(items, part="ref", corpora=pop)
        model, train_s = train_bae(emb[enc], spk[enc], overrides, epochs, workdir=CACHE)
        bits = binarize(model, emb).astype(np.float64)
        scorer = fit_scorer("beta", bits[ref], spk[ref])
        systems = {
            "balr": lambda a, b, scorer=scorer, bits=bits: lr_matrix(scorer, bits[a], bits[b]),
            "cosine": lambda a, b: eu[a] @ eu[b].T,
        }
        # condition description, fitted on the calibration recordings
        cal_items = part_index(items, part="cal", corpora=pop)
        cal_pop = np.concatenate([ref, cal_items])
        knn_cal = knn_similarity(eu, cal_items, cal_pop, spk)
        knn_thr = np.percentile(knn_cal, args.percentile)
        d_lo, d_hi = np.percentile(qual[cal_items], [0.5, 99.5])
        for system, fn in systems.items():
            cal_tabs = []
            for corpus in pop:
                idx = part_index(items, corpus, "cal")
                if not len(idx):
                    continue
                cal_tabs.append(trial_table(items, idx, fn, qual, cohort_stats(fn, idx, ref, spk)))
            cal = concat(cal_tabs)
            cals = {m: Cal(m, cal) for m in METHODS}
            coefs[f"{fold}/{system}"] = {
                m: (c.coef.round(4).tolist(), round(c.b, 4), round(c.lo, 2), round(c.hi, 2))
                for m, c in cals.items()
                if m != "pav"
            }
            for corpus in TEST_SETS:
                idx = part_index(items, corpus, "test")
                if not len(idx):
                    continue
                t = trial_table(items, idx, fn, qual, cohort_stats(fn, idx, ref, spk))
                raw = metrics(t["s"], t["y"], llr=False)
                knn = knn_similarity(eu, idx, cal_pop, spk)
                ok_item = (knn >= knn_thr) & (qual[idx] >= d_lo) & (qual[idx] <= d_hi)
                ok_knn = knn >= knn_thr
                ok_dur = (qual[idx] >= d_lo) & (qual[idx] <= d_hi)
                pos = np.empty(idx.max() + 1, np.intp)
                pos[idx] = np.arange(len(idx))
                inside = ok_item[pos[t["i"]]] & ok_item[pos[t["j"]]]
                if system == "balr":
                    warn_rows.append(
                        {
                            "fold": fold,
                            "test": corpus,
                            "covered": corpus in pop,
                            "fires_trials": float(1 - inside.mean()),
                            "fires_knn_only": float(
                                1 - (ok_knn[pos[t["i"]]] & ok_knn[pos[t["j"]]]).mean()
                            ),
                            "fires_dur_only": float(
                                1 - (ok_dur[pos[t["i"]]] & ok_dur[pos[t["j"]]]).mean()
                            ),
                            "items_out": float(1 - ok_item.mean()),
                        }
                    )
                for m, c in cals.items():
                    llr = c(t)
                    res = metrics(llr, t["y"])
                    sub = {}
                    for flag, name in ((inside, "in"), (~inside, "out")):
                        if flag.sum() and 0 < t["y"][flag].sum() < flag.sum():
                            sub[f"cllr_{name}"] = metrics(llr[flag], t["y"][flag])["cllr"]
                    rows.append(
                        {
                            "fold": fold,
                            "system": system,
                            "method": m,
                            "test": corpus,
                            "covered": corpus in pop,
                            "raw_eer": raw["eer"],
                            **res,
                            **sub,
                            "n_tar": int(t["y"].sum()),
                            "n_non": int((1 - t["y"]).sum()),
                        }
                    )
        print(f"fold {fold}: {time.perf_counter() - t0:.0f} s (BAE {train_s:.0f} s)", flush=True)
        pd.DataFrame(rows).to_csv(CACHE / "calibration.csv", index=False)
        pd.DataFrame(warn_rows).to_csv(CACHE / "warning.csv", index=False)
        (CACHE / "calibration_coefs.json").write_text(json.dumps(coefs, indent=1))
    frame = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    cols = ["eer", "cllr", "min_cllr", "non_gt100", "tar_lt001", "cllr_in", "cllr_out"]
    print(frame.set_index(["fold", "system", "method", "test"])[cols].round(3).to_string())
    print(pd.DataFrame(warn_rows).round(3).to_string())


if __name__ == "__main__":
    main()
