"""Typicality / drop-out scorers (DNA and Speech formulas), one recording per side.

The model of binary attributes by their typicality in a reference population and their
drop-out / drop-in rates is BA-LR's (Ben-Amor & Bonastre, "BA-LR: Binary-Attribute-based
Likelihood Ratio estimation for forensic voice comparison", IWBF 2022), after the drop-in /
drop-out treatment of forensic DNA profiles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from balr import records
from balr.data.vectors import counts_to_bits
from balr.errors import DataError
from balr.scoring.base import LRScorer, check_single_recording, safe_log


def fit_typicality(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Typicality `T` and drop-out `Dout` of each attribute from `(speakers, attributes, 2)`.

    Profile `P_l = 1[a > 0]`; `T = K1 (K1 - 1) / (K (K - 1))`; `Dout` = mean over profile-1
    speakers of `n / (a + n)` (0 where no speaker has the attribute).
    """
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 3 or stats.shape[2] != 2:
        raise DataError(f"typicality needs (speakers, attributes, 2) statistics, got {stats.shape}")
    n_speakers = stats.shape[0]
    if n_speakers < 2:
        raise DataError(f"typicality needs at least 2 reference speakers, got {n_speakers}")
    active, inactive = stats[..., 0], stats[..., 1]
    profile = active > 0
    k1 = profile.sum(axis=0).astype(np.float64)
    typicality = k1 * (k1 - 1) / (n_speakers * (n_speakers - 1))
    rate = np.divide(inactive, active + inactive, out=np.zeros_like(active), where=profile)
    dropout = np.divide(rate.sum(axis=0), k1, out=np.zeros_like(k1), where=k1 > 0)
    return typicality, dropout


def dna_lr_table(typicality: np.ndarray, dropout: np.ndarray, drop_in: float) -> np.ndarray:
    """`(attributes, 2, 2)` LRs by the DNA formulas; the two mixed cells take their mean."""
    t, dout, din = typicality, dropout, drop_in
    with np.errstate(divide="ignore", invalid="ignore"):
        lr00 = 1.0 / (t * (1.0 - din + dout))
        lr11 = 1.0 / (t * (1.0 - dout + din * t))
        lr01 = dout / t
        lr10 = din / (din * t + 1.0 - din)
    mixed = (lr01 + lr10) / 2.0
    return np.stack([np.stack([lr00, mixed], -1), np.stack([mixed, lr11], -1)], -2)


def speech_lr_table(typicality: np.ndarray, dropout: np.ndarray, drop_in: float) -> np.ndarray:
    """`(attributes, 2, 2)` LRs by the Speech formulas (drop events on both sides)."""
    t, dout, din = typicality, dropout, drop_in
    with np.errstate(divide="ignore", invalid="ignore"):
        lr00 = (1.0 + dout**2) / (t * (dout + 1.0 - din) ** 2)
        lr11 = (1.0 + (din * t) ** 2) / (t * (din * t + 1.0 - dout) ** 2)
        mixed_num = (1.0 - din) * din * t + dout * (1.0 - dout)
        mixed = mixed_num / (t * (mixed_num + 1.0 + din * t * dout))
    return np.stack([np.stack([lr00, mixed], -1), np.stack([mixed, lr11], -1)], -2)


class TypicalityScorer(LRScorer):
    """Base of DNA/Speech: fitted typicality and drop-out, global drop-in, rare-attribute cut.

    `drop_in`: probability that an attribute absent from a speaker shows; attributes whose
    typicality is below `typicality_threshold` contribute log LR 0. Both act at scoring time.
    """

    state_names = ("typicality_", "dropout_")
    explain_names = ("typicality", "dropout")
    scoring_params = ("drop_in", "typicality_threshold")  # may change after fitting
    multi_recording = False

    def __init__(self, drop_in: float = 0.12, typicality_threshold: float = 1e-4):
        if not 0.0 <= drop_in < 1.0:
            raise DataError(f"drop_in must be in [0, 1), got {drop_in}")
        self.drop_in = float(drop_in)
        self.typicality_threshold = float(typicality_threshold)
        self.typicality_: np.ndarray | None = None
        self.dropout_: np.ndarray | None = None

    @classmethod
    def check_state(cls, path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> None:
        """Typicality and drop-out rates: probabilities in [0, 1]."""
        super().check_state(path, state)
        for name in cls.state_names:
            if name in state:
                records.check_unit_interval(path, name, state[name])

    def fit(self, stats: np.ndarray) -> TypicalityScorer:
        self.typicality_, self.dropout_ = fit_typicality(stats)
        return self

    def lr_table(self) -> np.ndarray:
        raise NotImplementedError

    def bit_table(self) -> np.ndarray:
        """Log of the LR table; attributes under the typicality threshold contribute 0.

        So does `T = 0` (no two reference speakers share the attribute; the LRs are undefined).
        """
        self.check_fitted()
        rare = (self.typicality_ < self.typicality_threshold) | (self.typicality_ <= 0)
        table = safe_log(np.where(rare[:, None, None], 1.0, self.lr_table()))
        return table

    def log_lr_terms(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        check_single_recording(enroll, test, self.name)
        table = self.bit_table()
        e = (counts_to_bits(enroll) > 0.5).astype(np.intp)
        t = (counts_to_bits(test) > 0.5).astype(np.intp)
        return table[np.arange(table.shape[0]), e, t]


class DNAScorer(TypicalityScorer):
    """The DNA-style typicality / drop-out LR."""

    name = "dna"

    def lr_table(self) -> np.ndarray:
        self.check_fitted()
        return dna_lr_table(self.typicality_, self.dropout_, self.drop_in)


class SpeechScorer(TypicalityScorer):
    """The speech typicality / drop-out LR (drop-in and drop-out on both recordings)."""

    name = "speech"

    def lr_table(self) -> np.ndarray:
        self.check_fitted()
        return speech_lr_table(self.typicality_, self.dropout_, self.drop_in)
