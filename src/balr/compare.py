"""One comparison from audio files to an explained, calibrated likelihood ratio.

    recordings -> embeddings -> binary attributes -> per-attribute log-LR terms -> LLR

The enrollment side's attribute counts are summed over its recordings, likewise the test
side's; the LR scorer splits the log-LR into one term per attribute; a logistic calibrator
maps the score to a calibrated natural-log LR, which is then still an exact sum:
`slope * term_i` per attribute plus the calibration offset.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from balr import defaults
from balr.audio import audio_duration
from balr.binary_attributes.model import BinaryAttributeEncoder, load_encoder
from balr.calibration import Calibrator
from balr.data import AudioDataset, DatasetItem
from balr.embeddings.base import EmbeddingModel
from balr.embeddings.extraction import ExtractionOptions, extract_embeddings
from balr.errors import AudioError, DataError, ModelError
from balr.report.html import Recording
from balr.scoring import LRScorer, Scorer

logger = logging.getLogger(__name__)


@dataclass
class ComparisonResult:
    """The outcome of one comparison, with everything needed to explain it."""

    enrollment: list[Recording]
    test: list[Recording]
    score: float  # the scorer's log-LR: the sum of `terms`
    llr: float  # calibrated natural-log LR (equals `score` without calibration)
    terms: np.ndarray  # (K,) per-attribute log-LR terms of the scorer
    contributions: np.ndarray  # (K,) terms on the calibrated scale (slope * term)
    offset: float  # calibration intercept: llr = contributions.sum() + offset (unless clipped)
    enroll_counts: np.ndarray  # (K, 2) activations / non-activations summed over recordings
    test_counts: np.ndarray
    attribute_parameters: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def top_attributes(self, k: int) -> pd.DataFrame:
        """The k attributes pushing most towards same speaker, then the k most towards different."""
        order = np.argsort(-self.contributions, kind="stable")
        same = [i for i in order[:k] if self.contributions[i] > 0]
        different = [i for i in order[::-1][:k] if self.contributions[i] < 0]
        rows = []
        for direction, chosen in (("same", same), ("different", different)):
            for attribute in chosen:
                row = {
                    "towards": direction,
                    "attribute": f"BA{attribute}",
                    "contribution": float(self.contributions[attribute]),
                    "enrollment": _bits_text(self.enroll_counts[attribute]),
                    "test": _bits_text(self.test_counts[attribute]),
                }
                row.update({n: float(v[attribute]) for n, v in self.attribute_parameters.items()})
                rows.append(row)
        return pd.DataFrame(rows)


@dataclass
class ComparisonPipeline:
    """The models of a comparison: embedding model, BAE, LR scorer and calibration."""

    embedding_model: EmbeddingModel
    encoder: BinaryAttributeEncoder
    scorer: LRScorer
    calibrator: Calibrator | None = None
    typicality: LRScorer | None = None
    description: dict[str, str] = field(default_factory=dict)
    extraction: ExtractionOptions = field(
        default_factory=lambda: ExtractionOptions(num_workers=0, batch_size=8)
    )

    @classmethod
    def from_files(
        cls,
        embedding_model: EmbeddingModel,
        encoder_checkpoint: str | Path | None = None,
        scorer_checkpoint: str | Path | None = None,
        calibration: str | Path | None = None,
        use_calibration: bool = True,
    ) -> ComparisonPipeline:
        """Load the stages; missing paths fall back to the shipped defaults."""
        encoder_path = Path(encoder_checkpoint or defaults.require(defaults.BAE_CHECKPOINT, "BAE"))
        scorer_path = Path(
            scorer_checkpoint or defaults.require(defaults.SCORER_CHECKPOINT, "scorer")
        )
        scorer = Scorer.load(scorer_path)
        if not isinstance(scorer, LRScorer):
            raise ModelError(f"{scorer_path}: '{scorer.name}' is not a likelihood-ratio scorer")
        calibrator = None
        if use_calibration:
            if calibration is not None:
                calibrator = Calibrator.load(calibration)
            elif scorer_checkpoint is None:
                calibrator = Calibrator.load(defaults.require(defaults.CALIBRATION, "calibration"))
        typicality = None
        if scorer_checkpoint is None and defaults.TYPICALITY_CHECKPOINT.is_file():
            typicality = Scorer.load(defaults.TYPICALITY_CHECKPOINT)
        description = {
            "embedding model": f"{embedding_model.name} ({embedding_model.embedding_dim}-dim, "
            f"{embedding_model.sample_rate} Hz)",
            "binary-attribute encoder": str(encoder_path),
            "scorer": f"{scorer.name} ({scorer_path})",
            "calibration": _calibration_text(calibrator, calibration),
        }
        return cls(
            embedding_model, load_encoder(encoder_path), scorer, calibrator, typicality, description
        )

    def embed(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Embeddings `(n, d)` of the files; AudioError naming the first unusable file."""
        for path in paths:
            if not Path(path).is_file():
                raise AudioError(f"{path}: audio file not found")
        with tempfile.TemporaryDirectory(prefix="balr-compare-") as folder:
            items = [DatasetItem(id=f"rec{i}", audio=Path(p)) for i, p in enumerate(paths)]
            dataset = AudioDataset(items, folder, output_dir=folder, vector_format="npy")
            report = extract_embeddings(
                dataset, self.embedding_model, self.extraction, progress=False
            )
            if report.failures:
                raise AudioError(report.failures[0][2])
            indices, vectors = dataset.stack_vectors("emb")
        if len(indices) != len(paths):
            raise AudioError(f"{paths[0]}: no embedding could be computed")
        return vectors

    def compare(
        self, enrollment: Sequence[str | Path], test: Sequence[str | Path]
    ) -> ComparisonResult:
        """Compare the enrollment recordings (one speaker) with the test recordings."""
        if not enrollment or not test:
            raise DataError("compare needs at least one enrollment and one test recording")
        embeddings = self.embed([*enrollment, *test])
        counts = self.encoder.binarize(embeddings).astype(np.float64)
        enroll_counts = counts[: len(enrollment)].sum(axis=0)
        test_counts = counts[len(enrollment) :].sum(axis=0)
        terms = self.scorer.explain(enroll_counts[None], test_counts[None])[0]
        score = float(terms.sum())
        contributions, offset, llr, notes = self._calibrate(terms, score)
        parameters = dict(self.scorer.attribute_parameters())
        if self.typicality is not None:
            parameters.update(self.typicality.attribute_parameters())
        return ComparisonResult(
            enrollment=[Recording(str(p), audio_duration(p)) for p in enrollment],
            test=[Recording(str(p), audio_duration(p)) for p in test],
            score=score,
            llr=llr,
            terms=terms,
            contributions=contributions,
            offset=offset,
            enroll_counts=enroll_counts,
            test_counts=test_counts,
            attribute_parameters=parameters,
            notes=notes,
        )

    def _calibrate(self, terms: np.ndarray, score: float):
        """Calibrated LLR and per-attribute contributions on the calibrated scale."""
        notes: list[str] = []
        if self.calibrator is None:
            notes.append("Uncalibrated: the LLR is the scorer's own log-LR.")
            return terms.copy(), 0.0, score, notes
        llr = float(self.calibrator.transform(np.array([score]))[0])
        if self.calibrator.method == "logistic":
            contributions = self.calibrator.slope_ * terms
            offset = self.calibrator.intercept_
            if not math.isclose(llr, contributions.sum() + offset, rel_tol=1e-9, abs_tol=1e-9):
                notes.append(
                    f"The calibrated LLR {contributions.sum() + offset:.2f} was limited to "
                    f"{llr:.2f} by the empirical lower/upper bounds (ELUB) of the calibration data."
                )
            return contributions, offset, llr, notes
        notes.append("PAV calibration is not linear: contributions are the scorer's raw terms.")
        return terms.copy(), 0.0, llr, notes


def _bits_text(counts: np.ndarray) -> str:
    """`1`/`0` for one recording, `a/(a+n)` for several."""
    a, n = float(counts[0]), float(counts[1])
    return f"{a:g}" if a + n == 1 else f"{a:g}/{a + n:g}"


def _calibration_text(calibrator: Calibrator | None, path: str | Path | None) -> str:
    if calibrator is None:
        return "none (scores are the scorer's own log-LRs)"
    source = str(path) if path is not None else str(defaults.CALIBRATION)
    text = f"{calibrator.method} ({source}), fitted on {calibrator.n_target_} same-speaker and "
    text += f"{calibrator.n_nontarget_} different-speaker trials"
    if calibrator.lower_bound_ is not None:
        text += (
            f"; ELUB bounds log10 LR in [{calibrator.lower_bound_ / math.log(10):.2f}, "
            f"{calibrator.upper_bound_ / math.log(10):.2f}]"
        )
    return text
