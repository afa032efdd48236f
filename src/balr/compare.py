"""One comparison from audio files to an explained, calibrated likelihood ratio.

    recordings -> embeddings -> binary attributes -> per-attribute log-LR terms -> LLR

The enrollment side's attribute counts are summed over its recordings, likewise the test
side's; the LR scorer splits the log-LR into one term per attribute; a logistic or qmf
calibrator maps the score to a calibrated natural-log LR, which is then still an exact sum:
`slope * term_i` per attribute, plus the offset (the intercept; for qmf with the speech
duration terms, "recording durations"), plus the change made by the ELUB bounds. The
recordings are checked against the calibration's conditions description
(`balr.conditions`); outside them the result carries a warning. The models are chosen as for
`balr score test` (`balr.scoring.selection`): the shipped ones unless checkpoints are given.
"""

from __future__ import annotations

import logging
import math
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from balr import defaults
from balr.audio import audio_duration, check_audio_path
from balr.audio_identity import same_recording_files
from balr.audit import (
    calibration_files,
    comparison_record,
    embedding_model_files,
    report_record_path,
    scorer_file,
    write_record,
)
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.calibration import Calibrator
from balr.conditions import NO_DESCRIPTION, ConditionsDescription, trial_conditions
from balr.config import compose_config, register_config
from balr.data import AudioDataset, DatasetItem
from balr.data.provenance import check_encoder_fits
from balr.distributed import resolve_device
from balr.embeddings import build_embedding_model, select_model_overrides
from balr.embeddings.base import EmbeddingModel
from balr.embeddings.batch import ExtractionOptions, extract_embeddings
from balr.embeddings.extract import model_provenance
from balr.errors import AudioError, ConfigError, DataError, ModelError
from balr.report.html import ComparisonReport, Recording, write_report
from balr.scoring import DEFAULT_SCORER, LRScorer, Scorer
from balr.scoring.explain import top_attributes as top_k
from balr.scoring.plots import plot_explanation
from balr.scoring.selection import select_calibration, select_scorer

logger = logging.getLogger(__name__)


@dataclass
class CompareEmbeddingsConfig:
    model: Any = None
    vad: str = "none"  # none, energy or webrtc
    min_duration_s: float = 0.5
    min_speech_s: float = 0.5  # recordings with less net speech are refused (0: no check)


@dataclass
class EncoderModelConfig:
    checkpoint_path: str | None = None  # default: the shipped BAE


@dataclass
class EncoderConfig:
    model: EncoderModelConfig = field(default_factory=EncoderModelConfig)
    # use the encoder on another embedding model's vectors than it was trained on
    allow_other_embedding_model: bool = False


@dataclass
class CompareScorerConfig:
    checkpoint_path: str | None = None  # default: the shipped beta scorer + its calibration


@dataclass
class CompareConfig:
    defaults: list = field(
        default_factory=lambda: ["_self_", {"embeddings/model": defaults.EMBEDDING_MODEL}]
    )
    embeddings: CompareEmbeddingsConfig = field(default_factory=CompareEmbeddingsConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    scorer: CompareScorerConfig = field(default_factory=CompareScorerConfig)


register_config("compare", CompareConfig)


@dataclass
class ComparisonResult:
    """The outcome of one comparison, with everything needed to explain it."""

    enrollment: list[Recording]
    test: list[Recording]
    score: float  # the scorer's log-LR: the sum of `terms`
    llr: float  # calibrated natural-log LR (equals `score` without calibration)
    terms: np.ndarray  # (K,) per-attribute log-LR terms of the scorer
    contributions: np.ndarray  # (K,) terms on the calibrated scale (slope * term)
    offset: float  # intercept (+ duration terms for qmf): llr = contributions.sum() + offset
    #             + bounding
    enroll_counts: np.ndarray  # (K, 2) activations / non-activations summed over recordings
    test_counts: np.ndarray
    attribute_parameters: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown before the LR (same recording)
    bounding: float = 0.0  # change made by the ELUB bounds (0 inside them)
    offset_label: str = "calibration offset"  # "recording durations" for qmf
    in_conditions: bool | None = None  # None: uncalibrated, nothing to check
    conditions_warning: str = ""  # why the comparison is outside the calibration conditions

    def llr_lines(self) -> list[tuple[str, float]]:
        """The exactly additive parts of the LLR, as `(label, value)` lines: the attribute
        contributions, the offset, the ELUB bounding when it changed the LLR."""
        lines = [
            (f"sum of {len(self.contributions)} attribute contributions", self.contributions.sum()),
            (self.offset_label, self.offset),
        ]
        if self.bounding:
            lines.append(("bounded by calibration data (ELUB)", self.bounding))
        return lines

    def top_attributes(self, k: int) -> pd.DataFrame:
        """The k attributes pushing most towards same speaker, then the k most towards different."""
        check_explain(k)
        high, low = top_k(self.contributions[None, :], k)
        same = [i for i in high[0] if self.contributions[i] > 0]
        different = [i for i in low[0] if self.contributions[i] < 0]
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
    reference_llrs: Path | None = None  # reference target / non-target LLRs of these models
    conditions: ConditionsDescription | None = None  # of the calibration (None: it has none)
    model_files: dict[str, list[Path]] = field(default_factory=dict)  # role -> files (audit)

    @classmethod
    def from_files(
        cls,
        embedding_model: EmbeddingModel,
        encoder_checkpoint: str | Path | None = None,
        scorer_checkpoint: str | Path | None = None,
        calibration: str | Path | None = None,
        use_calibration: bool = True,
    ) -> ComparisonPipeline:
        """Load the stages; missing paths fall back to the shipped defaults (the beta scorer
        with its calibration, the speech scorer's typicality for explanations, the reference
        LLRs of the report)."""
        encoder_path = Path(encoder_checkpoint or defaults.require(defaults.BAE_CHECKPOINT, "BAE"))
        choice = select_scorer(DEFAULT_SCORER, scorer_checkpoint, quiet=True)
        scorer = choice.scorer
        if not isinstance(scorer, LRScorer):
            raise ModelError(
                f"{choice.checkpoint}: '{scorer.name}' is not a likelihood-ratio scorer"
            )
        calibrated = select_calibration(
            choice, calibration if use_calibration else None, not use_calibration, quiet=True
        )
        shipped = not choice.user_checkpoint
        typicality = None
        if shipped and defaults.TYPICALITY_CHECKPOINT.is_file():
            typicality = Scorer.load(defaults.require(defaults.TYPICALITY_CHECKPOINT, "typicality"))
        description = {
            "embedding model": f"{embedding_model.name} ({embedding_model.embedding_dim}-dim, "
            f"{embedding_model.sample_rate} Hz)",
            "binary-attribute encoder": str(encoder_path),
            "scorer": f"{scorer.name} ({choice.checkpoint})",
            "calibration": _calibration_text(calibrated.calibrator, calibrated.source),
        }
        if calibrated.calibrator is not None:
            description["calibration conditions"] = _conditions_text(calibrated.conditions)
        return cls(
            embedding_model,
            BinaryAttributeEncoder.load(encoder_path),
            scorer,
            calibrated.calibrator,
            typicality,
            description,
            reference_llrs=(
                defaults.require(defaults.REFERENCE_LLRS, "reference LLRs")
                if shipped and defaults.REFERENCE_LLRS.is_file()
                else None
            ),
            conditions=calibrated.conditions,
            model_files={
                "binary-attribute encoder": [encoder_path],
                "scorer": [scorer_file(choice.checkpoint)],
                **calibration_files(calibrated),
                "typicality scorer": [defaults.TYPICALITY_CHECKPOINT] if typicality else [],
            },
        )

    def embed(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Embeddings `(n, d)` of the files; AudioError naming the first unusable file."""
        return self.embed_with_speech(paths)[0]

    def embed_with_speech(self, paths: Sequence[str | Path]) -> tuple[np.ndarray, list[float]]:
        """Embeddings `(n, d)` and net speech seconds of the files; AudioError naming the first
        unusable file (unreadable, too short, or without usable speech) and why."""
        check_audio_files(paths)
        with tempfile.TemporaryDirectory(prefix="balr-compare-") as folder:
            # one vector file per recording, whatever the files' names (a/x.wav, b/x.wav)
            items = [
                DatasetItem(
                    id=f"rec{i}",
                    audio=Path(p),
                    embedding=Path(folder, f"rec{i}_emb.npy"),
                    binary_attributes=Path(folder, f"rec{i}_ba.npy"),
                )
                for i, p in enumerate(paths)
            ]
            dataset = AudioDataset(items, folder, output_dir=folder, vector_format="npy")
            report = extract_embeddings(
                dataset, self.embedding_model, self.extraction, progress=False
            )
            if report.failures:
                raise AudioError(report.failures[0][2])
            indices, vectors = dataset.stack_vectors("emb")
        if len(indices) != len(paths):
            raise AudioError(f"{paths[0]}: no embedding could be computed")
        return vectors, [report.speech_seconds[item.id] for item in items]

    def compare(
        self, enrollment: Sequence[str | Path], test: Sequence[str | Path]
    ) -> ComparisonResult:
        """Compare the enrollment recordings (one speaker) with the test recordings."""
        if not enrollment or not test:
            raise DataError("compare needs at least one enrollment and one test recording")
        paths = [*enrollment, *test]
        embeddings, speech = self.embed_with_speech(paths)
        recordings = [
            Recording(str(p), audio_duration(p), s) for p, s in zip(paths, speech, strict=True)
        ]
        counts = self.encoder.binarize(embeddings).astype(np.float64)
        enroll_counts = counts[: len(enrollment)].sum(axis=0)
        test_counts = counts[len(enrollment) :].sum(axis=0)
        terms = self.scorer.explain(enroll_counts[None], test_counts[None])[0]
        score = float(terms.sum())
        seconds = [sum(speech[: len(enrollment)]), sum(speech[len(enrollment) :])]
        calibrated = self._calibrate(terms, score, seconds)
        in_conditions, conditions_warning = self._check_conditions(
            embeddings, counts, speech, [str(p) for p in paths], len(enrollment)
        )
        parameters = dict(self.scorer.attribute_parameters())
        if self.typicality is not None:
            parameters.update(self.typicality.attribute_parameters())
        return ComparisonResult(
            enrollment=recordings[: len(enrollment)],
            test=recordings[len(enrollment) :],
            score=score,
            terms=terms,
            enroll_counts=enroll_counts,
            test_counts=test_counts,
            attribute_parameters=parameters,
            warnings=same_recording_warnings(enrollment, test),
            in_conditions=in_conditions,
            conditions_warning=conditions_warning,
            **calibrated,
        )

    def _calibrate(self, terms: np.ndarray, score: float, seconds: list[float]) -> dict:
        """The calibrated LLR and its exact parts: per-attribute contributions on the
        calibrated scale (`slope * term`), the offset and the ELUB bounding."""
        if self.calibrator is None:
            notes = ["Uncalibrated: the LLR is the scorer's own log-LR."]
            return dict(llr=score, contributions=terms.copy(), offset=0.0, notes=notes)
        parts = self.calibrator.parts(np.array([score]), np.array([seconds]))
        llr, bounding = float(parts.llr[0]), float(parts.bounding[0])
        notes = []
        if parts.slope is None:  # pav: not linear, the bounding is all that is additive
            notes.append("PAV calibration is not linear: contributions are the scorer's raw terms.")
            return dict(llr=llr, contributions=terms.copy(), offset=0.0, notes=notes)
        offset = float(parts.offset[0])
        if bounding:
            notes.append(
                f"The calibrated ln LR {llr - bounding:.2f} was limited to {llr:.2f} by the "
                "empirical lower/upper bounds (ELUB) of the calibration data."
            )
        label = "calibration offset"
        if self.calibrator.uses_durations:
            label = "recording durations"
            notes.append(
                f"qmf calibration: the offset {offset:+.2f} is the intercept plus the terms of "
                f"the net speech durations ({seconds[0]:.1f} s enrollment, {seconds[1]:.1f} s "
                "test)."
            )
        return dict(
            llr=llr,
            contributions=parts.slope * terms,
            offset=offset,
            bounding=bounding,
            offset_label=label,
            notes=notes,
        )

    def _check_conditions(
        self,
        embeddings: np.ndarray,
        counts: np.ndarray,
        speech: list[float],
        names: list[str],
        n_enrollment: int,
    ) -> tuple[bool | None, str]:
        """`(in conditions, warning)` of the comparison; None when it is uncalibrated."""
        if self.calibrator is None:
            return None, ""
        if self.conditions is None:
            return False, conditions_warning(NO_DESCRIPTION)
        vectors = counts if self.conditions.vector_kind_ == "ba" else embeddings
        recordings = self.conditions.check_recordings(vectors, np.array(speech))
        rows = list(range(len(names)))
        trial = trial_conditions(recordings, [rows[:n_enrollment]], [rows[n_enrollment:]], names)
        if trial.in_conditions[0]:
            return True, ""
        return False, conditions_warning(trial.reasons[0])


def conditions_warning(reason: str) -> str:
    """The warning of a comparison outside (or not checkable against) the calibration's
    conditions, with the advice to calibrate on a relevant population."""
    advice = (
        "the calibrated LR may mislead; calibrate on recordings relevant to this case with "
        "`balr score calibrate` (docs/scoring.md)"
    )
    if reason == NO_DESCRIPTION:
        return f"the calibration conditions cannot be checked ({reason}): {advice}"
    return f"outside the conditions of the calibration ({reason}): {advice}"


def check_explain(k: int) -> None:
    """ConfigError unless `k` (attributes listed each way) is a count >= 0."""
    if k < 0:
        raise ConfigError(f"--explain {k}: give the number of attributes to list (0 or more)")


def check_audio_files(paths: Sequence[str | Path]) -> None:
    """AudioError naming the first path that is missing or a directory."""
    for path in paths:
        if Path(path).is_dir():
            raise AudioError(
                f"{path}: is a directory; compare expects audio files (e.g. {path}/*.wav)"
            )
        check_audio_path(path)


def same_recording_warnings(
    enrollment: Sequence[str | Path], test: Sequence[str | Path]
) -> list[str]:
    """One warning per test file that is an enrollment file too: the same path, a copy, the
    same decoded samples or a near-duplicate (`balr.audio_identity`). A recording compared
    with itself is no evidence."""
    return [
        f"enrollment {same.enrollment} and test {same.test} are the same recording "
        f"({same.how}): a recording compared with itself is no evidence about the speaker; "
        "do not report this LR"
        for same in same_recording_files(enrollment, test)
    ]


def _bits_text(counts: np.ndarray) -> str:
    """`1`/`0` for one recording, `a/(a+n)` for several."""
    a, n = float(counts[0]), float(counts[1])
    return f"{a:g}" if a + n == 1 else f"{a:g}/{a + n:g}"


def _conditions_text(conditions: ConditionsDescription | None) -> str:
    if conditions is None:
        return NO_DESCRIPTION
    low, high = conditions.speech_range_s_
    return (
        f"net speech {low:.1f}-{high:.1f} s, similarity to the {conditions.n_recordings_} "
        f"calibration recordings ({conditions.vector_kind_} vectors) >= "
        f"{conditions.similarity_threshold_:.2f}"
    )


def _calibration_text(calibrator: Calibrator | None, source: str) -> str:
    if calibrator is None:
        return "none (scores are the scorer's own log-LRs)"
    text = f"{calibrator.method} ({source}), fitted on {calibrator.n_target_} same-speaker and "
    text += f"{calibrator.n_nontarget_} different-speaker trials"
    if calibrator.lower_bound_ is not None:
        text += (
            f"; ELUB bounds log10 LR in [{calibrator.lower_bound_ / math.log(10):.2f}, "
            f"{calibrator.upper_bound_ / math.log(10):.2f}]"
        )
    return text


@dataclass
class Comparison:
    """A comparison with the models that made it; writes its chart and HTML report."""

    pipeline: ComparisonPipeline
    result: ComparisonResult

    def contribution_plot(self, k: int) -> Callable[[Path], None]:
        """A function drawing the k attributes pushing most each way as a PNG at a path."""
        result = self.result
        total = result.contributions.sum() + result.offset
        offset = f"{result.offset_label} {result.offset:.2f}"
        if not result.bounding:
            title = f"calibrated ln LR {result.llr:.2f} = contributions + {offset}"
        else:
            title = f"contributions + {offset} = {total:.2f}, limited to {result.llr:.2f} (ELUB)"

        def draw(path: Path) -> None:
            plot_explanation(
                result.contributions,
                result.enroll_counts[:, 0],
                result.test_counts[:, 0],
                path,
                k,
                title=title,
            )

        return draw

    def write_plot(self, path: Path, k: int) -> Path:
        """The PNG bar chart of the k attributes pushing most each way."""
        self.contribution_plot(k)(path)
        return Path(path)

    def write_report(self, path: Path, k: int, reference: Path | None = None) -> Path:
        """The self-contained HTML report; `reference`: an NPZ of reference LLRs (arrays
        `target`, `nontarget`), by default the pipeline's."""
        reference = reference or self.pipeline.reference_llrs
        target, nontarget = load_reference_llrs(reference)
        record = comparison_record(self, reference)
        write_record(report_record_path(path), record)
        return write_report(
            path,
            ComparisonReport(
                enrollment=self.result.enrollment,
                test=self.result.test,
                llr=self.result.llr,
                attributes=self.result.top_attributes(k),
                contribution_plot=self.contribution_plot(k),
                reference_target_llrs=target,
                reference_nontarget_llrs=nontarget,
                models=self.pipeline.description,
                notes=self.result.notes,
                warnings=self.result.warnings,
                conditions_warning=self.result.conditions_warning,
                llr_lines=self.result.llr_lines(),
                audit=record,
            ),
        )


def load_reference_llrs(path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Reference same- and different-speaker LLRs from an NPZ (empty when `path` is None)."""
    if path is None:
        logger.warning("no reference LLRs for this scorer: the report has no Tippett plot")
        return np.zeros(0), np.zeros(0)
    try:
        with np.load(path, allow_pickle=False) as data:
            target, nontarget = np.asarray(data["target"]), np.asarray(data["nontarget"])
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
    return target, nontarget


def compare_files(
    enrollment: Sequence[str | Path],
    test: Sequence[str | Path],
    overrides: Sequence[str] = (),
    calibration: Path | None = None,
    use_calibration: bool = True,
    device: str | None = None,
) -> Comparison:
    """`balr compare`: the models of the `compare` config (with `key=value` overrides, e.g.
    `scorer.checkpoint_path=...`) on `device`, then one comparison of the recordings."""
    check_audio_files([*enrollment, *test])  # before any model is loaded
    cfg = compose_config("compare", select_model_overrides(overrides))
    model = build_embedding_model(cfg.embeddings.model).to(resolve_device(device))
    pipeline = ComparisonPipeline.from_files(
        model,
        cfg.encoder.model.checkpoint_path,
        cfg.scorer.checkpoint_path,
        calibration,
        use_calibration=use_calibration,
    )
    check_encoder_fits(
        model_provenance(model, cfg.embeddings.model),
        pipeline.encoder.trained_on,
        pipeline.encoder.input_dim,
        f"embeddings.model={model.name}",
        cfg.encoder.model.checkpoint_path or defaults.BAE_CHECKPOINT,
        cfg.encoder.allow_other_embedding_model,
    )
    embedding = {"embedding model": embedding_model_files(cfg.embeddings.model)}
    pipeline.model_files = embedding | pipeline.model_files
    pipeline.extraction.vad = cfg.embeddings.vad
    pipeline.extraction.min_duration_s = cfg.embeddings.min_duration_s
    pipeline.extraction.min_speech_s = cfg.embeddings.min_speech_s
    return Comparison(pipeline, pipeline.compare(enrollment, test))
