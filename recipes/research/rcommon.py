"""Shared helpers of the issue-13 research scripts (data, trials, metrics, BAE, scorers)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from r02_splits import load_embeddings, load_items  # noqa: E402

from balr.binary_attributes.config import train_config  # noqa: E402
from balr.binary_attributes.trainer import BAETrainer  # noqa: E402
from balr.evaluation.metrics import cllr, eer, min_cllr  # noqa: E402
from balr.scoring import make_scorer  # noqa: E402
from balr.scoring.fast import score_matrix  # noqa: E402
from balr.scoring.statistics import speaker_statistics  # noqa: E402

CACHE = Path(os.environ.get("RESEARCH_CACHE", "/work/research_cache"))
TEST_SETS = ("librispeech", "speechocean", "commonvoice", "voxceleb")
logging.getLogger("balr").setLevel(logging.WARNING)


def load(cache: Path = CACHE):
    items = load_items(cache)
    emb = load_embeddings(cache, items)
    return items.reset_index(drop=True), emb


def part_index(items, corpus=None, part=None, corpora=None):
    keep = np.ones(len(items), bool)
    if corpus is not None:
        keep &= (items.corpus == corpus).to_numpy()
    if corpora is not None:
        keep &= items.corpus.isin(corpora).to_numpy()
    if part is not None:
        keep &= (items.part == part).to_numpy()
    return np.flatnonzero(keep)


def trials(items, index):
    """All unordered pairs inside `index`: (i, j, label)."""
    a, b = np.triu_indices(len(index), k=1)
    spk = items.speaker.to_numpy()[index]
    return index[a], index[b], (spk[a] == spk[b]).astype(np.int64)


def pair_values(matrix, index, i, j):
    """Entries of a (len(index), len(index)) matrix at global item pairs (i, j)."""
    pos = np.empty(index.max() + 1, np.intp)
    pos[index] = np.arange(len(index))
    return matrix[pos[i], pos[j]]


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def metrics(scores, labels, llr=True):
    out = {"eer": eer(scores, labels)[0], "min_cllr": min_cllr(scores, labels)}
    if llr:
        tar, non = scores[labels == 1], scores[labels == 0]
        out.update(
            cllr=cllr(scores, labels),
            non_gt100=float(np.mean(non > np.log(100))),
            tar_lt001=float(np.mean(tar < -np.log(100))),
        )
    return out


def train_bae(x, y, overrides=(), epochs=30, seed=0, workdir=None):
    """A BAE trained in memory with `balr.binary_attributes` (last epoch kept)."""
    cfg = train_config(
        [
            f"trainer.epochs={epochs}",
            "trainer.progress=false",
            "trainer.log_period=0",
            "trainer.val_period=0",
            f"trainer.seed={seed}",
            *overrides,
        ]
    )
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        trainer = BAETrainer(cfg, tmp, device="cpu")
        # research speed-up: no per-epoch checkpoints / TensorBoard (training maths unchanged)
        trainer._open_outputs = lambda: None
        trainer._end_epoch = lambda record, writer: trainer.history.append(record)
        t0 = time.perf_counter()
        trainer.fit(x, y)
        seconds = time.perf_counter() - t0
    return trainer.model.eval(), seconds


def binarize(model, emb):
    return model.binarize(emb)[..., 0].astype(np.int8)


def fit_scorer(name, bits, speakers):
    _, stats = speaker_statistics(bits, list(speakers))
    params = {"maxllr": {"n_iterations": 50}}.get(name, {})
    return make_scorer(name, **params).fit(stats)


def lr_matrix(scorer, bits_a, bits_b=None):
    return score_matrix(scorer.bit_table(), bits_a, bits_b)


def cosine_matrix(a, b=None):
    a = unit(np.asarray(a, np.float64))
    b = a if b is None else unit(np.asarray(b, np.float64))
    return a @ b.T


def fast_elub(llr10, y, add_misleading=1, step=0.01, extremes=(-9.0, 9.0)):
    """lir.algorithms.bayeserror.elub (same definition, log10 LLRs in and out) in
    O(n log n) time and O(n + thresholds) memory: lir builds an (n x thresholds) matrix,
    several GB for the ~500k calibration trials used here."""
    llr = np.clip(np.asarray(llr10, np.float64), *extremes)
    y = np.asarray(y)
    lo = max(llr.min(), -np.log10(y.sum() + 1))
    hi = min(llr.max(), np.log10((1 - y).sum() + 1))
    smin, smax = min(0, int(np.floor_divide(lo, step))), max(0, int(np.floor_divide(hi, step)) + 1)
    thr = np.linspace(smin * step, smax * step, smax - smin + 1)
    tar, non = np.sort(llr[y == 1]), np.sort(llr[y == 0])
    acc_tar = (len(tar) - np.searchsorted(tar, thr, side="right")) / (len(tar) + add_misleading)
    acc_non = (len(non) - np.searchsorted(non, thr, side="right") + add_misleading) / (
        len(non) + add_misleading
    )
    eu_sys = 1 - acc_tar + 10**thr * acc_non
    neutral = (0 > thr).astype(float)
    eu_neu = 1 - neutral + 10**thr * neutral
    ratio = eu_neu / eu_sys
    left, right = thr[(thr <= 0) & (ratio < 1)], thr[(thr >= 0) & (ratio < 1)]
    lower = np.max(left + step, initial=thr.min())
    upper = np.min(right - step, initial=thr.max())
    return min(lower, 0), max(upper, 0)
