"""Issue 13, conditions description: kNN similarity on GE2E embeddings or on BA bits?

Share of test trials flagged (out of conditions) per corpus and leave-one-corpus-out fold,
with the description of `balr.conditions` (speech range [0.5, 99.5] %, mean cosine of the 10
nearest population recordings of other speakers, threshold at their 2nd percentile), the
population being the calibration recordings only (what `balr score calibrate` has) or the
reference + calibration recordings (as in r04). `*` marks a corpus left out of the fold.
The bits are those of `bae_mse_only` (r03: one encoder trained on all three corpora, so the
left-out corpus is not left out of the encoder). Run (about 1 min):
`PYTHONPATH=$PWD/src nice -n 10 python recipes/research/r06_conditions_space.py`.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rcommon import CACHE, load, part_index, trials

from balr.scoring.pairs import unit_rows

items, emb = load()
spk = items.speaker.to_numpy()
qual = np.log(np.maximum(items.speech_s.to_numpy(), 0.3))
spaces = {"emb": unit_rows(emb.astype(np.float64))}
bits = np.load(CACHE / "bits" / "bae_mse_only.npy").astype(np.float64)
spaces["bits"] = unit_rows(bits)
spaces["bits_centred"] = unit_rows(bits - bits[part_index(items, part="ref")].mean(0))
SPL = ("librispeech", "speechocean", "commonvoice")


def knn(x, q, pop, k=10, exclude_spk=True):
    s = x[q] @ x[pop].T
    if exclude_spk:
        s = np.where(spk[q][:, None] == spk[pop][None, :], -np.inf, s)
    return -np.sort(-s, axis=1)[:, :k].mean(1)


for fold in ("none",) + SPL:
    pop = tuple(c for c in SPL if c != fold)
    cal = part_index(items, part="cal", corpora=pop)
    for variant in ("cal", "ref+cal"):
        popidx = (
            cal
            if variant == "cal"
            else np.concatenate([part_index(items, part="ref", corpora=pop), cal])
        )
        d_lo, d_hi = np.percentile(qual[cal], [0.5, 99.5])
        for name, x in spaces.items():
            thr = np.percentile(knn(x, cal, popidx), 2.0)
            out = []
            for corpus in SPL + ("voxceleb",):
                idx = part_index(items, corpus, "test")
                ok = (knn(x, idx, popidx) >= thr) & (qual[idx] >= d_lo) & (qual[idx] <= d_hi)
                i, j, _ = trials(items, idx)
                pos = np.empty(idx.max() + 1, np.intp)
                pos[idx] = np.arange(len(idx))
                inside = ok[pos[i]] & ok[pos[j]]
                mark = "*" if corpus not in pop else " "
                out.append(f"{corpus[:5]}{mark}{100 * (1 - inside.mean()):5.1f}%")
            print(f"fold={fold:12s} pop={variant:8s} {name:13s}", "  ".join(out), flush=True)
