"""The reference LLRs a comparison is placed among (its Tippett plot), and what they are."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from balr.calibration import Calibrator
from balr.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceLLRs:
    """Same- (`target`) and different-speaker (`nontarget`) LLRs, with each one's corpus
    when the NPZ names them (`corpora`, `target_corpus`, `nontarget_corpus`)."""

    target: np.ndarray
    nontarget: np.ndarray
    corpora: list[str] = field(default_factory=list)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # corpus: (tar, non)

    @classmethod
    def empty(cls) -> ReferenceLLRs:
        return cls(np.zeros(0), np.zeros(0))


def load_reference_llrs(path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Reference same- and different-speaker LLRs from an NPZ (empty when `path` is None)."""
    reference = read_reference_llrs(path)
    return reference.target, reference.nontarget


def read_reference_llrs(path: Path | None) -> ReferenceLLRs:
    """The reference LLRs of an NPZ (arrays `target`, `nontarget`; optional per-corpus
    indices), empty when `path` is None; DataError naming the file and what is wrong."""
    if path is None:
        logger.warning("no reference LLRs for this scorer: the report has no Tippett plot")
        return ReferenceLLRs.empty()
    try:
        with np.load(path, allow_pickle=False) as data:
            target, nontarget = np.asarray(data["target"]), np.asarray(data["nontarget"])
            extra = {k: np.asarray(data[k]) for k in CORPUS_KEYS if k in data.files}
    except KeyError:
        raise DataError(f"{path}: expected arrays 'target' and 'nontarget'") from None
    except (AttributeError, TypeError):  # np.load gave one array (an .npy), not an archive
        raise DataError(f"{path}: not an NPZ archive of arrays 'target' and 'nontarget'") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read reference LLRs as NPZ ({reason})") from None
    for name, values in (("target", target), ("nontarget", nontarget)):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
            raise DataError(f"{path}: '{name}' must be a 1-D array of numbers (LLRs)")
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise DataError(f"{path}: '{name}' holds {bad} non-finite LLRs (NaN or infinite)")
    corpora, counts = _corpus_counts(path, extra, len(target), len(nontarget))
    return ReferenceLLRs(target, nontarget, corpora, counts)


CORPUS_KEYS = ("corpora", "target_corpus", "nontarget_corpus")


def _corpus_counts(
    path: Path, extra: dict[str, np.ndarray], n_target: int, n_nontarget: int
) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Corpus names and `(target, nontarget)` counts per corpus (none without the corpus
    arrays); DataError naming the array when they are incomplete or do not fit the LLRs."""
    if not extra:
        return [], {}
    missing = [key for key in CORPUS_KEYS if key not in extra]
    if missing:
        raise DataError(f"{path}: '{missing[0]}' is missing (the corpus arrays go together)")
    if extra["corpora"].ndim != 1:
        raise DataError(f"{path}: 'corpora' must be a 1-D array of corpus names")
    corpora = [str(name) for name in extra["corpora"].tolist()]
    owners = extra["target_corpus"], extra["nontarget_corpus"]
    for key, owner, size in zip(CORPUS_KEYS[1:], owners, (n_target, n_nontarget), strict=True):
        if owner.ndim != 1 or len(owner) != size or not _indices_into(owner, len(corpora)):
            raise DataError(
                f"{path}: '{key}' must hold one corpus index (0-{len(corpora) - 1}) per LLR"
            )
    counts = {
        name: (int(np.sum(owners[0] == i)), int(np.sum(owners[1] == i)))
        for i, name in enumerate(corpora)
    }
    return corpora, counts


def _indices_into(values: np.ndarray, size: int) -> bool:
    """Whether `values` are integers in `[0, size)`."""
    if not np.issubdtype(values.dtype, np.integer):
        return False
    return len(values) == 0 or (0 <= values.min() and values.max() < size)


def reference_text(reference: ReferenceLLRs, shipped: bool, calibrator: Calibrator | None) -> str:
    """What the reference LLRs are, and why their counts differ from the calibration's."""
    n_target, n_nontarget = len(reference.target), len(reference.nontarget)
    text = f"{n_target:,} same-speaker and {n_nontarget:,} different-speaker LLRs"
    if reference.counts:
        parts = ", ".join(f"{c} {t:,} / {n:,}" for c, (t, n) in reference.counts.items())
        text += f" (same / different per corpus: {parts})"
    if not shipped:
        return text + ", given with --reference."
    text += (
        ": the shipped models' calibrated LLRs of the held-out test trials "
        "(recipes/build_default_models.py), whose speakers are disjoint from those of the "
        "calibration. Every same-speaker test trial is kept; the different-speaker trials "
        f"are a seeded sample{_cap_text(reference)} (keeps the file small)."
    )
    if calibrator is not None and calibrator.n_target_ is not None:
        corpora = ", ".join(calibrator.groups_ or []) or "its corpora"
        text += (
            f" The calibration counts ({calibrator.n_target_:,} / {calibrator.n_nontarget_:,}) "
            "are all pairs of other speakers (the recipe's calibration part of "
            f"{corpora}), so the two sets of counts differ by design."
        )
    return text


def _cap_text(reference: ReferenceLLRs) -> str:
    """` of at most N per corpus` when several corpora share the largest count N."""
    counts = [n for _, n in reference.counts.values()]
    if len(counts) > 1 and counts.count(max(counts)) > 1:
        return f" of at most {max(counts):,} per corpus"
    return ""
