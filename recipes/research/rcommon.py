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
from balr.calibration import elub_bounds  # noqa: E402
from balr.data.labelled import LabelledEmbeddings  # noqa: E402
from balr.evaluation.metrics import cllr, eer, min_cllr  # noqa: E402
from balr.scoring import make_scorer  # noqa: E402
from balr.scoring.pairs import BitPairs, unit_rows  # noqa: E402
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
            # the training choices these measurements were made with (balr 0.1's defaults)
            "trainer.losses=[mse, triplet, sparsity]",
            "trainer.losses.triplet.loss_margin=0.3",
            "trainer.losses.sparsity.weight=0.001953125",
            "trainer.ste_gradient=gate",
            "trainer.weight_init=pytorch",
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
        trainer.fit(LabelledEmbeddings(np.asarray(x, np.float32), np.asarray(y)))
        seconds = time.perf_counter() - t0
    return trainer.model.eval(), seconds


def binarize(model, emb):
    return model.binarize(emb)[..., 0].astype(np.int8)


def fit_scorer(name, bits, speakers):
    _, stats = speaker_statistics(bits, list(speakers))
    params = {"maxllr": {"n_iterations": 50}}.get(name, {})
    return make_scorer(name, **params).fit(stats)


def lr_matrix(scorer, bits_a, bits_b=None):
    """Log-LRs of every row of `bits_a` against every row of `bits_b` (default `bits_a`)."""
    if bits_b is None:
        return BitPairs(scorer.bit_table(), bits_a).matrix()
    both = BitPairs(scorer.bit_table(), np.concatenate([bits_a, bits_b])).matrix()
    return both[: len(bits_a), len(bits_a) :]


def cosine_matrix(a, b=None):
    a = unit_rows(a)
    b = a if b is None else unit_rows(b)
    return a @ b.T


def fast_elub(llr10, y):
    """ELUB bounds (log10) of log10 LLRs: `balr.calibration.elub_bounds`."""
    return elub_bounds(llr10, y)
