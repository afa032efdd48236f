"""Research (issue 18), item 1: the shipped chain on the held-out test parts and on their
channel variants (every recording of a variant shares one strong channel: r08_channels).

Per test set (corpus x variant): mean cosine of same- / different-speaker pairs, share of
active bits of the shipped BAE, and for the shipped BA-LR chain (bae + beta +
calibration.json, qmf with net speech durations) and the shipped cosine chain (cosine of
GE2E embeddings + calibration_cosine.json): EER, Cllr, minCllr, different-speaker LR > 100,
same-speaker LR < 1/100, share of trials the shipped out-of-conditions check flags, and
the misleading shares among the un-flagged trials.
Usage: r08_failure.py [--cache DIR]   (log: r08_failure.log)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from r08_common import (  # noqa: E402
    LN100,
    SHORT,
    Shipped,
    Tee,
    base_args,
    beta_matrix,
    binarize,
    cosine,
    load_data,
    metrics,
    pairs_of,
    select,
)


def shipped_llrs(sh: Shipped, items, emb, index):
    """Per trial of all pairs in `index`: labels, BA-LR and cosine calibrated LLRs, flags."""
    a, b, y = pairs_of(items, index)
    x = emb[index]
    bits = binarize(sh.bae, x)
    raw_ba = beta_matrix(sh.beta, bits)[a, b]
    speech = items.speech.to_numpy()[index]
    dur = np.stack([speech[a], speech[b]], 1)
    llr_ba = sh.cal.transform(raw_ba, dur)
    cos = cosine(x)[a, b]
    llr_cos = sh.cal_cos.transform(cos)
    ok_ba = sh.cond.check_recordings(bits.astype(np.float64), speech).in_conditions
    ok_cos = sh.cond_cos.check_recordings(x, speech).in_conditions
    return {
        "y": y, "cos": cos, "raw_ba": raw_ba, "llr_ba": llr_ba, "llr_cos": llr_cos,
        "ok_ba": ok_ba[a] & ok_ba[b], "ok_cos": ok_cos[a] & ok_cos[b], "bits": bits,
        "a": a, "b": b,
    }  # fmt: skip


def misleading(llr, y, keep):
    non = (y == 0) & keep
    tar = (y == 1) & keep
    return (
        100 * float(np.mean(llr[non] > LN100)) if non.any() else float("nan"),
        100 * float(np.mean(llr[tar] < -LN100)) if tar.any() else float("nan"),
    )


def main():
    ap = base_args(__doc__)
    args = ap.parse_args()
    log = Tee(Path(__file__).with_suffix(".log"))
    items, emb = load_data(args.cache)
    sh = Shipped()
    log("# r08_failure: shipped chain on held-out test parts and channel variants")
    log("Trials: all pairs inside one test set. LS same-speaker = segments of one utterance;")
    log("SO/CV stored as lossy Opus (~30 kbit/s) before any variant. Vox: 18 recordings.")
    log(
        "cos tar/non: mean cosine of same/different-speaker pairs; bits: mean share of active bits."
    )
    log("Each system: EER % | Cllr | minCllr | non LR>100 % | tar LR<1/100 % | flagged % | "
        "non>100 % / tar<1/100 % among un-flagged")  # fmt: skip
    header = (
        f"{'set':14s} {'n':>5s} {'tar/non':>12s} {'cos tar':>7s} {'cos non':>7s} {'bits':>5s} | "
        "BA-LR (shipped qmf)                                  | cosine (shipped logistic)"
    )
    log(header)
    for corpus in ("librispeech", "speechocean", "commonvoice", "voxceleb"):
        for variant in ("orig", "phone", "telephone", "hall", "long"):
            index = select(items, corpus, "test", variant)
            if len(index) < 4:
                continue
            r = shipped_llrs(sh, items, emb, index)
            y = r["y"]
            if y.sum() == 0:
                pass
            parts = []
            for sysname, flag in (("llr_ba", "ok_ba"), ("llr_cos", "ok_cos")):
                llr = r[sysname]
                flagged = 100 * float(np.mean(~r[flag]))
                un = misleading(llr, y, r[flag])
                if y.sum() > 0:
                    m = metrics(llr, y)
                    parts.append(
                        f"{m['eer']:5.2f} {m['cllr']:6.3f} {m['min_cllr']:5.3f} "
                        f"{m['non100']:5.2f} {m['tar100']:5.2f} {flagged:5.1f} {un[0]:5.2f}/{un[1]:5.2f}"
                    )
                else:  # no same-speaker trial (LibriSpeech long: one utterance per speaker)
                    non = 100 * float(np.mean(llr[y == 0] > LN100))
                    parts.append(
                        f"{'-':>5s} {'-':>6s} {'-':>5s} {non:5.2f} {'-':>5s} {flagged:5.1f} {un[0]:5.2f}/  -  "
                    )
            cos = r["cos"]
            ct = cos[y == 1].mean() if y.sum() else float("nan")
            name = f"{SHORT[corpus]} {variant}"
            log(
                f"{name:14s} {len(index):5d} {int(y.sum()):5d}/{int((y == 0).sum()):6d} "
                f"{ct:7.3f} {cos[y == 0].mean():7.3f} {r['bits'].mean():5.3f} | "
                + " | ".join(parts)
            )
    # speech durations of the conditions (the shipped calibration saw 0.69-7.26 s)
    log("\nnet speech (s), median [5 %, 95 %] per set:")
    for (corpus, variant), g in items[items.part == "test"].groupby(["corpus", "variant"]):
        q = np.percentile(g.speech, [50, 5, 95])
        log(f"  {SHORT[corpus]:3s} {variant:9s} {q[0]:5.1f} [{q[1]:4.1f}, {q[2]:5.1f}]  n={len(g)}")
    log(f"done in {log.elapsed()}")


if __name__ == "__main__":
    main()
