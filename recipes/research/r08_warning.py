"""Research (issue 18), item 5: a warning that tracks miscalibration, without a population.

Chain: the shipped BA-LR chain (bae + beta + qmf calibration.json) and the shipped cosine
chain. Per recording, signals computed against the shipped calibration population (the
recordings of the `cal` parts of LS + SO + CV, the recordings calibration.json was fitted
on; for a calibration recording itself, its own speaker left out):
  speech      net speech seconds (the shipped range check flags outside 0.69-7.26 s)
  knn_ba      the shipped similarity statistic on BA bits (mean cosine of the 10 nearest
              calibration recordings of other speakers; low = unlike); its P98 rule is the
              shipped similarity check (threshold at the 2nd percentile)
  knn_emb     the same on GE2E embeddings (the cosine calibration's check)
  raw_mean    mean raw beta LLR against all calibration recordings (high = different
              speakers look alike to this recording)
  raw_top     mean of its 10 highest raw beta LLRs against them
  llr_p100    share of calibration recordings (other speakers) giving it a calibrated LR > 100
  cos_mean    mean cosine of the embedding against them; cos_top: mean of the 10 highest
  bits        share of its active bits (the encoder's activation rate)
  nuis_energy length of the recording's centred embedding projected on the nuisance
              directions below (K = 128), in between-speaker standard deviations
  knn_prof    mean standardised Euclidean distance of its 96-value channel profile (r07) to
              the 10 nearest calibration recordings of other speakers (high = unlike)
Per trial:
  nuis_K      cosine of the two recordings' embeddings (centred on the training mean)
              projected on the K directions where a speaker's recordings vary most relative
              to between-speaker differences (r08_common.NuisanceSubspace, fitted on the enc
              parts): high = the two recordings share a strong recording condition; its
              threshold is the P-th percentile over all calibration trials. `nuis_K|pos`:
              the same, applied only to trials whose LR is above 1.
A threshold is the P-th percentile (P = 98, 99, 99.5) of the calibration recordings' own
values (the 1-P-th for low = bad); a trial is warned when a recording of it passes it.
Sets: in-domain = LS / SO / CV test parts (original) and their long versions (LS whole
utterances 1.6-17 s; SO and CV test speakers' recordings concatenated in two halves, ~24 s
and ~10 s); left out = the telephone and hall variants of every test part, and VoxCeleb.
Reported per rule and set: % of trials warned, and among un-warned trials the % that are
strongly misleading (different-speaker LR > 100 or same-speaker LR < 1/100), with the per
class rates, and the ROC AUC of each recording signal for "variant vs in-domain".
Usage: r08_warning.py [--cache DIR]   (log: r08_warning.log)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r07_domain_detectors import knn_distance  # noqa: E402
from r08_common import (  # noqa: E402
    FITTED,
    LN100,
    SHORT,
    NuisanceSubspace,
    Shipped,
    Tee,
    base_args,
    beta_matrix,
    binarize,
    cosine,
    load_data,
    pairs_of,
    select,
    unit,
)

SIGNALS = {  # name: +1 if high = bad, -1 if low = bad
    "speech": +1, "knn_ba": -1, "knn_emb": -1, "raw_mean": +1, "raw_top": +1,
    "llr_p100": +1, "cos_mean": +1, "cos_top": +1, "bits": +1, "bits_low": -1, "knn_prof": +1,
    "nuis_energy": +1,
}  # fmt: skip


def topk_mean(m, k=10):
    return -np.partition(-m, k - 1, axis=1)[:, :k].mean(1)


def knn_similarity(cos, same, k=10):
    """balr.conditions' similarity: mean cosine of the k nearest calibration recordings of
    other speakers (same formula as ConditionsDescription.similarity, the references being
    the calibration recordings listed here)."""
    cos = np.where(same, -np.inf, cos)
    return topk_mean(cos, k)


def recording_signals(sh, items, emb, prof, rows, cal, cal_bits):
    """Signals of `rows` against the calibration recordings `cal` (own speaker excluded)."""
    spk = items.speaker.to_numpy()
    speech = items.speech.to_numpy()
    bits = binarize(sh.bae, emb[rows])
    same = spk[rows][:, None] == spk[cal][None, :]
    raw = beta_matrix(sh.beta, bits, cal_bits)
    d = np.stack(np.broadcast_arrays(speech[rows][:, None], speech[cal][None, :]), -1).reshape(
        -1, 2
    )
    llr = sh.cal.transform(raw.reshape(-1), d).reshape(raw.shape)
    cos = cosine(emb[rows], emb[cal])
    raw[same], cos[same], llr[same] = -np.inf, -np.inf, np.nan
    valid = ~same
    out = {
        "speech": speech[rows],
        "knn_ba": knn_similarity(
            unit(bits.astype(np.float64)) @ unit(cal_bits.astype(np.float64)).T, same
        ),
        "knn_emb": knn_similarity(cosine(emb[rows], emb[cal]), same),
        "raw_mean": np.where(valid, raw, 0).sum(1) / valid.sum(1),
        "raw_top": topk_mean(raw),
        "llr_p100": np.nansum(llr > LN100, 1) / valid.sum(1),
        "cos_mean": np.where(valid, cos, 0).sum(1) / valid.sum(1),
        "cos_top": topk_mean(cos),
        "bits": bits.mean(1),
        "bits_low": bits.mean(1),
    }
    return out, bits


def main():
    ap = base_args(__doc__)
    args = ap.parse_args()
    log = Tee(Path(__file__).with_suffix(".log"))
    items, emb, prof = load_data(args.cache, profiles=True)
    sh = Shipped()
    spk = items.speaker.to_numpy()
    cal = np.concatenate([select(items, c, "cal") for c in FITTED])
    cal_bits = binarize(sh.bae, emb[cal])
    # channel-profile kNN, standardised on the calibration recordings
    shift, scale = prof[cal].mean(0), prof[cal].std(0) + 1e-6
    pref = (prof[cal] - shift) / scale

    def prof_knn(rows):
        exclude = spk[rows][:, None] == spk[cal][None, :]
        return knn_distance((prof[rows] - shift) / scale, pref, exclude=exclude)

    sets = {}
    for corpus in (*FITTED, "voxceleb"):
        for variant in ("orig", "long", "phone", "telephone", "hall"):
            idx = select(items, corpus, "test", variant)
            if len(idx) >= 4:
                sets[(corpus, variant)] = idx
    nuis = {k: NuisanceSubspace(items, emb, k) for k in (64, 128)}
    cal_trial = {}
    for k, ns in nuis.items():
        vals = []
        for c in FITTED:
            idx = select(items, c, "cal")
            a, b, _ = pairs_of(items, idx)
            z = ns.project(emb[idx])
            vals.append((z @ z.T)[a, b])
        cal_trial[f"nuis_{k}"] = np.concatenate(vals)
    cal_sig, _ = recording_signals(sh, items, emb, prof, cal, cal, cal_bits)
    cal_sig["knn_prof"] = prof_knn(cal)
    cal_sig["nuis_energy"] = nuis[128].energy(emb[cal])
    sig, res = {}, {}
    for key, idx in sets.items():
        s, bits = recording_signals(sh, items, emb, prof, idx, cal, cal_bits)
        s["knn_prof"] = prof_knn(idx)
        s["nuis_energy"] = nuis[128].energy(emb[idx])
        sig[key] = s
        a, b, y = pairs_of(items, idx)
        speech = items.speech.to_numpy()[idx]
        llr_ba = sh.cal.transform(
            beta_matrix(sh.beta, bits)[a, b], np.stack([speech[a], speech[b]], 1)
        )
        llr_cos = sh.cal_cos.transform(cosine(emb[idx])[a, b])
        ok_ba = sh.cond.check_recordings(bits.astype(np.float64), speech).in_conditions
        ok_cos = sh.cond_cos.check_recordings(emb[idx], speech).in_conditions
        res[key] = dict(a=a, b=b, y=y, llr_ba=llr_ba, llr_cos=llr_cos, ok_ba=ok_ba, ok_cos=ok_cos)
        for k, ns in nuis.items():
            z = ns.project(emb[idx])
            res[key][f"nuis_{k}"] = (z @ z.T)[a, b]
    in_domain = [k for k in sets if k[0] in FITTED and k[1] in ("orig", "long")]
    left_out = [k for k in sets if k not in in_domain]

    log("# r08_warning: which per-recording signals track miscalibration (no population)")
    log("SO/CV lossy Opus; LS same-speaker trials are segments of one utterance; LS long has no "
        "same-speaker trial (one utterance per speaker); Vox: 18 recordings.")  # fmt: skip
    # 1. the chain's misleading rates per set, and signal distributions
    log(
        "\n## shipped chain per set: trials, strongly misleading % (BA-LR: non>100 / tar<1/100), same for cosine"
    )
    for key, r in res.items():
        y = r["y"]
        mb = ((y == 0) & (r["llr_ba"] > LN100)) | ((y == 1) & (r["llr_ba"] < -LN100))
        mc = ((y == 0) & (r["llr_cos"] > LN100)) | ((y == 1) & (r["llr_cos"] < -LN100))
        log(f"{SHORT[key[0]]:3s} {key[1]:9s} n={len(y):6d} BA {100 * mb.mean():6.2f} % "
            f"({100 * np.mean(r['llr_ba'][y == 0] > LN100):5.2f}/{100 * np.mean(r['llr_ba'][y == 1] < -LN100) if y.sum() else float('nan'):5.2f})"
            f"  cos {100 * mc.mean():6.2f} %")  # fmt: skip
    log("\n## recording signals: median per set (cal = the calibration recordings)")
    log(f"{'set':14s} " + " ".join(f"{n:>9s}" for n in SIGNALS))
    log(f"{'cal':14s} " + " ".join(f"{np.median(cal_sig[n]):9.3f}" for n in SIGNALS))
    for key, s in sig.items():
        log(
            f"{SHORT[key[0]] + ' ' + key[1]:14s} "
            + " ".join(f"{np.median(s[n]):9.3f}" for n in SIGNALS)
        )
    log(
        "\n## ROC AUC of each signal (its bad direction): recordings of a left-out set vs all in-domain test recordings"
    )
    ind = {n: np.concatenate([sig[k][n] for k in in_domain]) for n in SIGNALS}
    log(f"{'left-out set':14s} " + " ".join(f"{n:>9s}" for n in SIGNALS))
    for key in left_out:
        vals = []
        for n, d in SIGNALS.items():
            x = np.concatenate([ind[n], sig[key][n]]) * d
            lab = np.r_[np.zeros(len(ind[n])), np.ones(len(sig[key][n]))]
            vals.append(roc_auc_score(lab, x))
        log(f"{SHORT[key[0]] + ' ' + key[1]:14s} " + " ".join(f"{v:9.3f}" for v in vals))

    # 2. rules: thresholds at percentiles of the calibration recordings
    def warned_trials(rule, s, r):
        trial_level = [x for x in rule if x[0].split("|")[0] in cal_trial]
        rec = warned_recordings([x for x in rule if x not in trial_level], s)
        flag = rec[r["a"]] | rec[r["b"]]
        for name, p in trial_level:
            base = name.split("|")[0]
            hit = r[base] > np.percentile(cal_trial[base], p)
            if name.endswith("|pos"):  # only trials whose LR supports the same speaker
                hit &= r["llr_ba"] > 0
            flag |= hit
        return flag

    def warned_recordings(rule, s):
        flag = np.zeros(len(s["speech"]), bool)
        for name, p in rule:
            d = SIGNALS[name]
            thr = np.percentile(cal_sig[name], p if d > 0 else 100 - p)
            flag |= (s[name] > thr) if d > 0 else (s[name] < thr)
        return flag

    rules = {"shipped (speech range + knn_ba)": None, "shipped knn_ba only": [("knn_ba", 98)]}
    for p in (98, 99, 99.5):
        for n in ("knn_ba", "knn_emb", "raw_mean", "raw_top", "llr_p100", "cos_mean", "cos_top",
                  "bits", "bits_low", "knn_prof", "nuis_energy"):  # fmt: skip
            rules[f"{n} P{p:g}"] = [(n, p)]
    for p in (98, 99, 99.5):
        rules[f"knn_prof + raw_mean P{p:g}"] = [("knn_prof", p), ("raw_mean", p)]
        rules[f"knn_prof + cos_mean P{p:g}"] = [("knn_prof", p), ("cos_mean", p)]
        rules[f"knn_prof + bits P{p:g}"] = [("knn_prof", p), ("bits", p), ("bits_low", p)]
        rules[f"knn_prof + knn_ba P{p:g}"] = [("knn_prof", p), ("knn_ba", p)]
        rules[f"knn_prof + raw_mean + knn_ba P{p:g}"] = [
            ("knn_prof", p),
            ("raw_mean", p),
            ("knn_ba", p),
        ]
    for p in (98, 99, 99.5):
        for k in (64, 128):
            rules[f"nuis_{k} P{p:g}"] = [(f"nuis_{k}", p)]
            rules[f"nuis_{k} + knn_prof P{p:g}"] = [(f"nuis_{k}", p), ("knn_prof", p)]
            rules[f"nuis_{k} + knn_prof + knn_emb P{p:g}"] = [
                (f"nuis_{k}", p),
                ("knn_prof", p),
                ("knn_emb", p),
            ]
            rules[f"nuis_{k} + knn_prof + nuis_energy P{p:g}"] = [
                (f"nuis_{k}", p),
                ("knn_prof", p),
                ("nuis_energy", p),
            ]
        rules[f"nuis_128 P{p:g} + knn_prof P99.5"] = [("nuis_128", p), ("knn_prof", 99.5)]
    for q in (80, 90, 95):
        for p in (98, 99, 99.5):
            rules[f"nuis_128|pos P{q} + knn_prof P{p:g}"] = [("nuis_128|pos", q), ("knn_prof", p)]
            rules[f"nuis_128|pos P{q} + knn_prof + nuis_energy P{p:g}"] = [
                ("nuis_128|pos", q),
                ("knn_prof", p),
                ("nuis_energy", p),
            ]
    table = []
    for name, rule in rules.items():
        row = {"rule": name}
        for key, r in res.items():
            if rule is None:
                t_ok = r["ok_ba"][r["a"]] & r["ok_ba"][r["b"]]
            else:
                t_ok = ~warned_trials(rule, sig[key], r)
            y, llr = r["y"], r["llr_ba"]
            mis = ((y == 0) & (llr > LN100)) | ((y == 1) & (llr < -LN100))
            row[key] = (
                100 * (1 - t_ok.mean()),
                100 * mis[t_ok].mean() if t_ok.any() else np.nan,
                int(t_ok.sum()),
            )
        table.append(row)
    log(
        "\n## rules on the shipped BA-LR chain: % trials warned / % strongly misleading among un-warned"
    )
    keys = list(res)
    log(f"{'rule':34s} " + " ".join(f"{SHORT[c] + '-' + v[:4]:>12s}" for c, v in keys)
        + "  worst-in  mis-in  worst-out-mis")  # fmt: skip
    for row in table:
        cells = " ".join(f"{row[k][0]:5.1f}/{row[k][1]:5.2f}" for k in keys)
        worst_in = max(row[k][0] for k in in_domain)
        n_in = sum(row[k][2] for k in in_domain)
        mis_in = sum(row[k][1] * row[k][2] for k in in_domain if row[k][2]) / max(n_in, 1)
        worst_out = max((row[k][1] for k in left_out if row[k][2]), default=np.nan)
        log(f"{row['rule']:34s} {cells}  {worst_in:6.1f} {mis_in:6.3f} {worst_out:6.2f}")
    pd.DataFrame(
        [
            {
                "rule": r["rule"],
                "set": f"{k[0]}-{k[1]}",
                "warned": r[k][0],
                "mis_unwarned": r[k][1],
                "n_unwarned": r[k][2],
            }
            for r in table
            for k in keys
        ]  # fmt: skip
    ).to_csv(args.cache / "r08" / "warning_rules.csv", index=False)
    log(f"done in {log.elapsed()}")


if __name__ == "__main__":
    main()
