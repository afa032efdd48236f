"""Shared helpers of the issue-18 research scripts (r08_*): data of every condition,
the shipped models, population draws, adaptation estimators, calibrations, metrics.

Data (written by r08_extract.py under CACHE): the originals of every corpus with their
parts (r02 splits), the channel variants of the test parts (`telephone`, `hall`) and long
concatenations of test speakers' recordings (`long`). Items with under 0.5 s of net speech
(`balr extract`'s refusal rule, on the speech measure `balr extract` writes) are dropped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rcommon import lr_matrix  # noqa: E402

from balr import defaults  # noqa: E402
from balr.binary_attributes.config import train_config  # noqa: E402
from balr.binary_attributes.model import BinaryAttributeEncoder  # noqa: E402
from balr.binary_attributes.trainer import BAETrainer  # noqa: E402
from balr.calibration import Calibrator, make_calibrator  # noqa: E402
from balr.conditions import ConditionsDescription  # noqa: E402
from balr.data.labelled import LabelledEmbeddings  # noqa: E402
from balr.evaluation.metrics import cllr, eer, min_cllr  # noqa: E402
from balr.scoring import Scorer  # noqa: E402
from balr.scoring.beta import BetaScorer  # noqa: E402
from balr.scoring.statistics import speaker_statistics  # noqa: E402

CACHE = Path("/work/research_cache")
FITTED = ("librispeech", "speechocean", "commonvoice")
VARIANTS = ("orig", "phone", "telephone", "hall")
SHORT = {"librispeech": "LS", "speechocean": "SO", "commonvoice": "CV", "voxceleb": "Vox"}
LN100 = float(np.log(100))
MIN_SPEECH_S = 0.5
#: the shipped BAE recipe (recipes/build_default_models.py BAE_OVERRIDES, BAE_EPOCHS)
SHIPPED_BAE = [
    "trainer.losses=[mse]", "trainer.weight_init=pytorch", "data.N_classes_per_batch=32",
    "data.M_samples_per_class=4", "model.latent_dim=512", "trainer.seed=0",
    "trainer.val_period=0", "trainer.log_period=0", "trainer.progress=false",
    "trainer.checkpoint_period=0", "data.drop_last=true",
]  # fmt: skip
SHIPPED_EPOCHS = 30


def train_bae(x, y, epochs: int = SHIPPED_EPOCHS, overrides=()):
    """A BAE trained in memory with the shipped recipe's choices (last epoch kept; no files
    written: the trainer's per-epoch outputs are skipped, the training maths unchanged)."""
    cfg = train_config([*SHIPPED_BAE, f"trainer.epochs={epochs}", *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = BAETrainer(cfg, tmp, device="cpu")
        trainer._open_outputs = lambda: None
        trainer._end_epoch = lambda record, writer: trainer.history.append(record)
        t0 = time.perf_counter()
        trainer.fit(LabelledEmbeddings(np.asarray(x, np.float32), np.asarray(y)))
        seconds = time.perf_counter() - t0
    return trainer.model.eval(), seconds


# ----------------------------------------------------------------------------- logging
class Tee:
    """print() to stdout and to a log file."""

    def __init__(self, path: Path):
        self.file = open(path, "w")  # noqa: SIM115
        self.t0 = time.perf_counter()

    def __call__(self, *args, **kw):
        print(*args, **kw, flush=True)
        print(*args, **kw, file=self.file, flush=True)

    def elapsed(self) -> str:
        return f"{time.perf_counter() - self.t0:.0f} s"


def base_args(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--seeds", type=int, default=3, help="population draws per setting")
    return ap


# ----------------------------------------------------------------------------- data
def load_data(cache: Path = CACHE, profiles: bool = False):
    """Every item (originals, variants, long) with `corpus, speaker, part, variant, speech`
    and a row-aligned (n, 256) array of GE2E embeddings (and, with `profiles`, the (n, 96)
    channel profiles of r07_domain_detectors.channel_profile)."""
    parts = pd.read_csv(cache / "splits.csv", dtype=str)
    frames, arrays, profs = [], [], []
    for corpus in (*FITTED, "voxceleb"):
        f = pd.read_csv(cache / "emb" / f"{corpus}.csv", dtype={"id": str, "speaker": str})
        f = f.merge(parts, on=["corpus", "speaker"], how="left", validate="m:1")
        frames.append(f.assign(variant="orig"))
        arrays.append(np.load(cache / "emb" / f"{corpus}.npy"))
        if profiles:
            profs.append(np.load(cache / "r08" / "orig" / f"{corpus}_profile.npy"))
        for variant in ("phone", "telephone", "hall", "long"):
            path = cache / "r08" / variant / f"{corpus}.csv"
            if path.is_file():
                g = pd.read_csv(path, dtype={"id": str, "speaker": str})
                frames.append(g.assign(part="test", variant=variant))
                arrays.append(np.load(path.with_suffix(".npy")))
                if profiles:
                    profs.append(np.load(path.with_name(f"{corpus}_profile.npy")))
    items = pd.concat(frames, ignore_index=True)
    emb = np.concatenate(arrays).astype(np.float64)
    items["speech"] = items["speech_balr"].astype(float)
    keep = (items["speech"] >= MIN_SPEECH_S).to_numpy()
    items = items[keep].reset_index(drop=True)
    cols = ["id", "corpus", "speaker", "part", "variant", "speech", "raw_s", "rms_dbfs"]
    if profiles:
        return items[cols], emb[keep], np.concatenate(profs).astype(np.float64)[keep]
    return items[cols], emb[keep]


def select(items, corpus=None, part=None, variant="orig", corpora=None) -> np.ndarray:
    keep = np.ones(len(items), bool)
    if corpus is not None:
        keep &= (items.corpus == corpus).to_numpy()
    if corpora is not None:
        keep &= items.corpus.isin(corpora).to_numpy()
    if part is not None:
        keep &= (items.part == part).to_numpy()
    if variant is not None:
        keep &= (items.variant == variant).to_numpy()
    return np.flatnonzero(keep)


def pairs_of(items, index: np.ndarray):
    """All unordered pairs inside `index` as local positions (a, b) and labels."""
    a, b = np.triu_indices(len(index), k=1)
    spk = items.speaker.to_numpy()[index]
    return a, b, (spk[a] == spk[b]).astype(np.int64)


def draw_population(items, index: np.ndarray, k, seed: int):
    """Split the speakers of `index` into a population of `k` speakers (seeded) and the rest;
    `k = "half"`: the first half of a seeded permutation when seed is even, the second
    half when odd (two folds per seed pair). Returns (population rows, scored rows)."""
    spk = items.speaker.to_numpy()[index]
    names = np.array(sorted(set(spk)))
    rng = np.random.default_rng(1000 + seed if k != "half" else 2000 + seed // 2)
    order = rng.permutation(len(names))
    if k == "half":
        h = len(names) // 2
        chosen = names[order[:h]] if seed % 2 == 0 else names[order[h:]]
    else:
        chosen = names[order[:k]]
    pop = np.isin(spk, chosen)
    return index[pop], index[~pop]


# ----------------------------------------------------------------------------- shipped models
class Shipped:
    def __init__(self):
        self.bae = BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT)
        self.beta = Scorer.load(defaults.SCORER_CHECKPOINT)
        self.cal = Calibrator.load(defaults.CALIBRATION)
        self.cal_cos = Calibrator.load(defaults.COSINE_CALIBRATION)
        self.cond = ConditionsDescription.load(defaults.CALIBRATION)
        self.cond_cos = ConditionsDescription.load(defaults.COSINE_CALIBRATION)


def binarize(bae, emb: np.ndarray) -> np.ndarray:
    return bae.binarize(np.asarray(emb, np.float32))[..., 0].astype(np.int8)


def beta_from_alpha(alpha: np.ndarray) -> BetaScorer:
    s = BetaScorer()
    s.alpha_ = np.asarray(alpha, np.float64)
    return s


def fit_beta(bits: np.ndarray, speakers) -> BetaScorer:
    _, stats = speaker_statistics(bits, list(speakers))
    return BetaScorer().fit(stats)


def adapted_alpha(alpha_ship: np.ndarray, pop_bits: np.ndarray, tau: float) -> np.ndarray:
    """Typicality refit on a population, shrunk toward the shipped reference population:
    activation rate m = (n p_pop + tau m_ship) / (n + tau) (n population recordings),
    precision alpha0 + alpha1 kept from the shipped scorer."""
    s = alpha_ship.sum(1)
    m_ship = alpha_ship[:, 0] / s
    n = len(pop_bits)
    p = pop_bits.mean(0) if n else m_ship
    m = (n * p + tau * m_ship) / (n + tau) if np.isfinite(tau) else m_ship
    m = np.clip(m, 1e-4, 1 - 1e-4)
    return np.stack([m * s, (1 - m) * s], 1)


def beta_matrix(scorer, bits_a, bits_b=None) -> np.ndarray:
    return lr_matrix(scorer, bits_a, bits_b)


# ----------------------------------------------------------------------------- adaptation
def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def inv_sqrt(c: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    w = np.maximum(w, floor * w.max())
    return (v / np.sqrt(w)) @ v.T


def sqrtm(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.maximum(w, 0))) @ v.T


class TrainStats:
    """The training (shipped) population statistics the estimators shrink toward: the
    corpus-balanced mean of the enc+ref+cal embeddings of the three fitted corpora, the
    pooled within-corpus covariance (each corpus centred on its own mean, corpora weighing
    equally) and the pooled within-speaker covariance."""

    def __init__(self, items, emb, parts=("enc", "ref", "cal")):
        means, covs, wcovs = [], [], []
        for corpus in FITTED:
            idx = np.flatnonzero(
                (items.corpus == corpus).to_numpy()
                & items.part.isin(parts).to_numpy()
                & (items.variant == "orig").to_numpy()
            )
            x = emb[idx]
            mu = x.mean(0)
            means.append(mu)
            covs.append(np.cov((x - mu).T))
            spk = items.speaker.to_numpy()[idx]
            _, inv = np.unique(spk, return_inverse=True)
            cnt = np.bincount(inv)
            smean = np.zeros((len(cnt), x.shape[1]))
            np.add.at(smean, inv, x)
            smean /= cnt[:, None]
            r = (x - smean[inv])[cnt[inv] > 1]
            wcovs.append(r.T @ r / max(len(r) - (cnt > 1).sum(), 1))
        self.mean = np.mean(means, 0)
        self.cov = np.mean(covs, 0)
        self.wcov = np.mean(wcovs, 0)
        self.corpus_means = dict(zip(FITTED, means, strict=True))


class Adapter:
    """One fitted estimator of a population: `fit(pop_emb, pop_speakers)` then
    `transform(x)`. kinds:
      none          x
      train         LN(x - mu_T)                        (no population)
      centre        LN(x - m), m = (n mu_P + tau mu_T) / (n + tau)
      whiten_id     LN(W (x - m)), W = C^-1/2, C = (n S_P + tau_c s I) / (n + tau_c)
      whiten_tr     same, C = (n S_P + tau_c Sigma_T) / (n + tau_c)
      coral         LN(Sigma_T^1/2 C^-1/2 (x - m)), C as whiten_tr (CORAL to training)
      wccn_tr       LN(Wt (x - m)), Wt = Sigma_w,T^-1/2 (training within-speaker, static)
      wccn          LN(W (x - m)), W = C_w^-1/2, C_w = (n_w S_w,P + tau_c Sigma_w,T) / (n_w + tau_c)
    (n: population recordings; S_P: their covariance around m; LN: length normalisation)."""

    def __init__(self, kind: str, train: TrainStats, tau: float = 0.0, tau_c: float = 0.0):
        self.kind, self.train, self.tau, self.tau_c = kind, train, float(tau), float(tau_c)

    def fit(self, pop: np.ndarray | None, speakers=None) -> Adapter:
        t = self.train
        n = 0 if pop is None else len(pop)
        if self.kind in ("none", "train") or n == 0:
            self.m = t.mean
        elif np.isinf(self.tau):
            self.m = t.mean
        else:
            self.m = (n * pop.mean(0) + self.tau * t.mean) / (n + self.tau)
        self.A = None
        if self.kind in ("whiten_id", "whiten_tr", "coral") and n:
            r = pop - self.m
            s_p = r.T @ r / n
            target = (
                t.cov
                if self.kind != "whiten_id"
                else np.eye(len(t.mean)) * np.trace(t.cov) / len(t.mean)
            )
            c = (n * s_p + self.tau_c * target) / (n + self.tau_c)
            self.A = inv_sqrt(c)
            if self.kind == "coral":
                self.A = sqrtm(t.cov) @ self.A
        elif self.kind == "wccn_tr":
            self.A = inv_sqrt(t.wcov)
        elif self.kind == "wccn" and n:
            spk = np.asarray(speakers)
            _, inv = np.unique(spk, return_inverse=True)
            cnt = np.bincount(inv)
            smean = np.zeros((len(cnt), pop.shape[1]))
            np.add.at(smean, inv, pop)
            smean /= cnt[:, None]
            r = (pop - smean[inv])[cnt[inv] > 1]
            nw = max(len(r) - int((cnt > 1).sum()), 0)
            s_w = r.T @ r / max(nw, 1)
            c = (nw * s_w + self.tau_c * t.wcov) / (nw + self.tau_c)
            self.A = inv_sqrt(c)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return np.asarray(x, np.float64)
        y = x - self.m
        if self.A is not None:
            y = y @ self.A.T
        return unit(y)


def cosine(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    a = unit(a)
    return a @ (a if b is None else unit(b)).T


def snorm(s: np.ndarray, ce: np.ndarray, ct: np.ndarray, top: int | None = None) -> np.ndarray:
    """Symmetric (adaptive) score normalisation of a matrix `s` (rows enrollment, columns
    test) with cohort score matrices `ce` (rows x cohort) and `ct` (columns x cohort); `top`
    keeps each recording's `top` highest cohort scores (AS-norm)."""

    def stats(c):
        if top is not None and top < c.shape[1]:
            c = -np.partition(-c, top - 1, axis=1)[:, :top]
        return c.mean(1), c.std(1) + 1e-9

    me, se = stats(ce)
    mt, st = stats(ct)
    return 0.5 * ((s - me[:, None]) / se[:, None] + (s - mt[None, :]) / st[None, :])


# ----------------------------------------------------------------------------- calibration, metrics
def fit_cal(method: str, scores, labels, groups=None, durations=None) -> Calibrator:
    return make_calibrator(method).fit(scores, labels, durations=durations, groups=groups)


def metrics(llr: np.ndarray, y: np.ndarray) -> dict:
    llr = np.asarray(llr, np.float64)
    y = np.asarray(y)
    tar, non = llr[y == 1], llr[y == 0]
    return {
        "eer": 100 * eer(llr, y)[0],
        "cllr": cllr(llr, y),
        "min_cllr": min_cllr(llr, y),
        "non100": 100 * float(np.mean(non > LN100)),
        "tar100": 100 * float(np.mean(tar < -LN100)),
        "n_tar": int(len(tar)),
        "n_non": int(len(non)),
    }


def raw_eer(scores, y) -> float:
    return 100 * eer(np.asarray(scores, np.float64), np.asarray(y))[0]


def mean_metrics(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def fmt(m: dict, keys=("eer", "cllr", "min_cllr", "non100", "tar100")) -> str:
    f = {
        "eer": "{:5.2f}",
        "cllr": "{:5.3f}",
        "min_cllr": "{:5.3f}",
        "non100": "{:5.2f}",
        "tar100": "{:5.2f}",
    }
    return " ".join(f.get(k, "{:6.3f}").format(m[k]) for k in keys)


class NuisanceSubspace:
    """Directions where recordings of one speaker vary most relative to how speakers differ:
    the top-k generalised eigenvectors of (within-speaker, between-speaker) covariance of the
    `enc` parts of the fitted corpora (each corpus centred on its own mean, corpora weighing
    equally; between-speaker covariance regularised by 1e-3 of its mean variance).
    `similarity(x, y)`: cosine of the two recordings' centred embeddings projected on these
    directions (a recording condition they share: channel, room, session)."""

    def __init__(self, items, emb, k: int = 128, part: str = "enc"):
        from scipy.linalg import eigh

        spk = items.speaker.to_numpy()
        sw = sb = 0.0
        for corpus in FITTED:
            idx = select(items, corpus, part)
            x = emb[idx] - emb[idx].mean(0)
            _, inv = np.unique(spk[idx], return_inverse=True)
            cnt = np.bincount(inv)
            m = np.zeros((len(cnt), x.shape[1]))
            np.add.at(m, inv, x)
            m /= cnt[:, None]
            r = x - m[inv]
            sw = sw + r.T @ r / len(r) / len(FITTED)
            sb = sb + m.T @ m / len(m) / len(FITTED)
        d = emb.shape[1]
        lam, vec = eigh(sw, sb + 1e-3 * np.trace(sb) / d * np.eye(d))
        self.basis = vec[:, np.argsort(-lam)[:k]]
        self.mean = TrainStats(items, emb).mean

    def project(self, x: np.ndarray) -> np.ndarray:
        return unit((x - self.mean) @ self.basis)

    def energy(self, x: np.ndarray) -> np.ndarray:
        """Length of the centred embedding's projection (the basis is scaled to unit
        between-speaker variance along each direction): how far the recording sits from
        the training population along the nuisance directions."""
        return np.linalg.norm((x - self.mean) @ self.basis, axis=1)
