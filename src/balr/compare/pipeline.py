"""One comparison from audio files to an explained, calibrated likelihood ratio.

    recordings -> embeddings -> binary attributes -> per-attribute log-LR terms -> LLR

The enrollment side's attribute counts are summed over its recordings, likewise the test
side's; the LR scorer splits the log-LR into one term per attribute; the calibrated LLR is
then still an exact sum (`balr.calibration.split`). The recordings are checked against the
calibration's conditions description (`balr.conditions.check_comparison`); outside them the
result carries a warning. The models are chosen as for `balr score test`
(`balr.compare.models`): the shipped ones unless checkpoints are given.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from balr import defaults
from balr.audio import audio_duration, load_audio
from balr.audit import embedding_model_files
from balr.calibration.split import split_llr
from balr.compare.config import compare_config
from balr.compare.embed import embed_files
from balr.compare.inputs import check_audio_files, same_recording_warnings
from balr.compare.models import ComparisonModels, load_models
from balr.compare.result import ComparisonResult
from balr.conditions import check_comparison
from balr.conditions.channel import ChannelReference, channel_profile, name_channel_problems
from balr.conditions.jobs import calibration_problems
from balr.conditions.population import PopulationConditions
from balr.data.provenance import EmbeddingProvenance, check_encoder_fits
from balr.embeddings.ge2e_numpy import NAME as GE2E_NAME
from balr.embeddings.ge2e_numpy import GE2EConfig, NumpyGE2E
from balr.embeddings.segments import ExtractionOptions
from balr.errors import AudioError, DataError
from balr.population import (
    Population,
    adapt_to_population,
    calibration_population_warning,
    check_population_size,
)
from balr.report.comparison import contribution_plot, write_comparison_report
from balr.report.html import Recording
from balr.report.text import conditions_warning

if TYPE_CHECKING:
    from balr.embeddings.base import EmbeddingModel


@dataclass
class ComparisonPipeline(ComparisonModels):
    """The models of a comparison: the loaded BAE, LR scorer and calibration
    (`ComparisonModels`), and the embedding model with its extraction settings."""

    embedding_model: EmbeddingModel | NumpyGE2E = field(kw_only=True)
    extraction: ExtractionOptions = field(
        default_factory=lambda: ExtractionOptions(num_workers=0, batch_size=8)
    )

    @classmethod
    def from_files(
        cls,
        embedding_model: EmbeddingModel | NumpyGE2E,
        encoder_checkpoint: str | Path | None = None,
        scorer_checkpoint: str | Path | None = None,
        calibration: str | Path | None = None,
        use_calibration: bool = True,
    ) -> ComparisonPipeline:
        """Load the stages (`balr.compare.models.load_models`): missing paths fall back to
        the shipped defaults."""
        models = load_models(
            embedding_model, encoder_checkpoint, scorer_checkpoint, calibration, use_calibration
        )
        return cls(**vars(models), embedding_model=embedding_model)

    @property
    def uses_shipped_reference(self) -> bool:
        """Whether the report's reference LLRs are the shipped ones (by default)."""
        return self.reference_llrs == defaults.REFERENCE_LLRS

    def embed(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Embeddings `(n, d)` of the files; AudioError naming the first unusable file."""
        return self.embed_with_speech(paths)[0]

    def embed_with_speech(
        self, paths: Sequence[str | Path], waves: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, list[float]]:
        """Embeddings `(n, d)` and net speech seconds of the files; AudioError naming the first
        unusable file (unreadable, too short, or without usable speech) and why. `waves`, when
        given, receives each file's decoded audio at the model's rate."""
        check_audio_files(paths)
        if isinstance(self.embedding_model, NumpyGE2E):
            return embed_files(paths, self.embedding_model, self.extraction, waves)
        embedded = self._embed_with_batch_engine(paths)
        if waves is not None:  # the batch engine keeps no audio: decoded here
            rate = self.embedding_model.sample_rate
            waves += [load_audio(p, rate) for p in paths]
        return embedded

    def _embed_with_batch_engine(
        self, paths: Sequence[str | Path]
    ) -> tuple[np.ndarray, list[float]]:
        """A torch model's embeddings through `balr.embeddings.batch` (vectors written to a
        temporary folder and read back)."""
        from balr.data import AudioDataset, DatasetItem
        from balr.embeddings.batch import extract_embeddings

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
        n = len(enrollment)
        checks_channels = self.channel is not None or self.population_conditions is not None
        waves: list[np.ndarray] | None = [] if checks_channels else None
        embeddings, speech = self.embed_with_speech(paths, waves)
        recordings = [
            Recording(str(p), audio_duration(p), s) for p, s in zip(paths, speech, strict=True)
        ]
        counts = self.encoder.binarize(embeddings).astype(np.float64)
        enroll_counts, test_counts = counts[:n].sum(axis=0), counts[n:].sum(axis=0)
        terms = self.scorer.explain(enroll_counts[None], test_counts[None])[0]
        split = split_llr(self.calibrator, terms, [sum(speech[:n]), sum(speech[n:])])
        in_conditions, warning, conditions_notes = self._check_conditions(
            embeddings, counts, speech, [str(p) for p in paths], n, waves
        )
        return ComparisonResult(
            enrollment=recordings[:n],
            test=recordings[n:],
            score=float(terms.sum()),
            llr=split.llr,
            terms=terms,
            contributions=split.contributions,
            offset=split.offset,
            enroll_counts=enroll_counts,
            test_counts=test_counts,
            attribute_parameters=self._attribute_parameters(),
            notes=[*split.notes, *conditions_notes],
            warnings=same_recording_warnings(enrollment, test),
            bounding=split.bounding,
            offset_label=split.offset_label,
            in_conditions=in_conditions,
            conditions_warning=warning,
        )

    def population_warnings(self, used: Population | None) -> list[str]:
        """The warning (a list of at most one line) when the calibration was fitted on
        scores adapted to a population and this comparison uses none, or other vectors
        (`balr.population.calibration_population_warning`, as `balr score test`)."""
        warning = calibration_population_warning(self.calibration_population, used)
        return [warning] if warning else []

    def _attribute_parameters(self) -> dict[str, np.ndarray]:
        """The scorer's fitted per-attribute parameters, and the typicality scorer's."""
        parameters = dict(self.scorer.attribute_parameters())
        if self.typicality is not None:
            parameters.update(self.typicality.attribute_parameters())
        return parameters

    def _check_conditions(
        self,
        embeddings: np.ndarray,
        counts: np.ndarray,
        speech: list[float],
        names: list[str],
        n_enrollment: int,
        waves: list[np.ndarray] | None = None,
    ) -> tuple[bool | None, str, list[str]]:
        """`(in conditions, warning, notes)` of the comparison (in conditions: None when it is
        uncalibrated; notes: e.g. speech longer than calibrated, when in conditions); with a
        channel reference, each recording's channel (`waves`) is checked too. With the
        conditions of a relevant population that tested the calibration, the recordings'
        channels and the sides' speech are checked against those instead."""
        if self.calibrator is None:
            return None, "", []
        kind = self.conditions.vector_kind_ if self.conditions is not None else "emb"
        vectors = counts if kind == "ba" else embeddings
        if self.population_conditions is not None and waves is not None:
            return self._check_population_conditions(vectors, speech, names, n_enrollment, waves)
        trial = check_comparison(
            self.conditions, vectors, speech, n_enrollment, names, self.calibrator
        )
        if self.channel is not None and waves is not None:
            rate = self.embedding_model.sample_rate
            trial = trial.with_reasons(
                [channel_reasons(self.channel, waves, rate, names, n_enrollment)]
            )
        return self._conditions_result(trial)

    def _check_population_conditions(
        self, vectors: np.ndarray, speech: list[float], names: list[str], n_enrollment: int,
        waves: list[np.ndarray],
    ) -> tuple[bool, str, list[str]]:  # fmt: skip
        """`_check_conditions` against the population's conditions or the calibration's:
        each recording out only when its channel is unlike the population's and it is out
        of the calibration's conditions too (its similarity, its channel)."""
        rate = self.embedding_model.sample_rate
        profiles = np.stack([channel_profile(wave, rate) for wave in waves])
        problems = calibration_problems(self.conditions, vectors, self.channel, list(profiles))
        trial = self.population_conditions.check_comparison(
            profiles, speech, names, n_enrollment, problems
        )
        sides = np.array([[sum(speech[:n_enrollment]), sum(speech[n_enrollment:])]])
        return self._conditions_result(trial.with_notes(self.calibrator.duration_notes(sides)))

    @staticmethod
    def _conditions_result(trial) -> tuple[bool, str, list[str]]:
        """`(in conditions, warning, notes)` of one checked comparison (`TrialConditions`)."""
        if trial.in_conditions[0]:
            return True, "", [n for n in trial.notes[0].split("; ") if n]
        return False, conditions_warning(trial.reasons_and_notes()[0]), []


def channel_reasons(
    reference: ChannelReference,
    waves: Sequence[np.ndarray],
    sample_rate: int,
    names: Sequence[str],
    n_enrollment: int,
) -> str:
    """The out-of-conditions reasons of the recordings whose channel profile is beyond the
    reference's threshold ('' when none is), named by `name_channel_problems`."""
    profiles = np.stack([channel_profile(wave, sample_rate) for wave in waves])
    return name_channel_problems(reference.problems(profiles), names, n_enrollment)


@dataclass
class Comparison:
    """A comparison with the models that made it; writes its chart and HTML report
    (`balr.report.comparison`)."""

    pipeline: ComparisonPipeline
    result: ComparisonResult

    def write_plot(self, path: Path, k: int) -> Path:
        """The PNG bar chart of the k attributes pushing most each way."""
        contribution_plot(self.result, k)(path)
        return Path(path)

    def write_report(self, path: Path, k: int, reference: Path | None = None) -> Path:
        """The self-contained HTML report; `reference`: an NPZ of reference LLRs (arrays
        `target`, `nontarget`), by default the pipeline's."""
        return write_comparison_report(self, path, k, reference)


def compare_files(
    enrollment: Sequence[str | Path],
    test: Sequence[str | Path],
    config: DictConfig | None = None,
    calibration: Path | None = None,
    use_calibration: bool = True,
    device: str | None = None,
    population: Path | None = None,
    population_vectors: Path | None = None,
    population_adapt: str = "auto",
) -> Comparison:
    """`balr compare`: the models of the composed `compare` config (`compare_config`, e.g.
    with `scorer.checkpoint_path=...`; None: its defaults) on `device`, then one comparison
    of the recordings; with a `population` dataset (BA vectors in `population_vectors` or
    beside its audio, else extracted) the scorer adapts to it where it shows that the
    calibration does not hold there (`population_adapt` `auto`; `always`: whatever it
    shows: `balr.population_decision.decide_adaptation`) and the case LR is checked against it
    (`balr.compare.population`)."""
    check_audio_files([*enrollment, *test])  # before any model is loaded
    cfg = config if config is not None else compare_config()
    model = build_compare_model(cfg.embeddings.model, device, numpy=population is None)
    pipeline = ComparisonPipeline.from_files(
        model,
        cfg.encoder.model.checkpoint_path,
        cfg.scorer.checkpoint_path,
        calibration,
        use_calibration=use_calibration,
    )
    check_encoder_fits(
        embedding_provenance(model, cfg.embeddings.model),
        pipeline.encoder.trained_on,
        pipeline.encoder.input_dim,
        f"embeddings.model={model.name}",
        cfg.encoder.model.checkpoint_path or defaults.BAE_CHECKPOINT,
        cfg.encoder.allow_other_embedding_model,
    )
    embedding = {"embedding model": embedding_model_files(cfg.embeddings.model)}
    pipeline.model_files = embedding | pipeline.model_files
    pipeline.extraction = ExtractionOptions.from_config(cfg.embeddings)
    if population is None:
        result = pipeline.compare(enrollment, test)
        result.warnings.extend(pipeline.population_warnings(None))
        return Comparison(pipeline, result)
    return compare_with_population(
        pipeline, enrollment, test, population, population_vectors, population_adapt
    )


def build_compare_model(model_cfg, device: str | None, numpy: bool) -> EmbeddingModel | NumpyGE2E:
    """The embedding model of `model_cfg` (the composed `embeddings.model` node): GE2E on CPU
    (no device, or `cpu`) in numpy when `numpy` and its weights are a sound safetensors
    file (no torch imported); otherwise the torch model on `device`
    (`balr.embeddings.registry.build_embedding_model`)."""
    on_cpu = (device or "cpu").strip().lower() == "cpu"
    if numpy and on_cpu and model_cfg.get("name") == GE2E_NAME:
        ge2e = GE2EConfig(**{f.name: model_cfg[f.name] for f in fields(GE2EConfig)})
        model = NumpyGE2E.load(ge2e)
        if model is not None:
            return model
    from balr.distributed import resolve_device
    from balr.embeddings import build_embedding_model

    return build_embedding_model(model_cfg).to(resolve_device(device))


def embedding_provenance(model: EmbeddingModel | NumpyGE2E, model_cfg) -> EmbeddingProvenance:
    """What made the comparison's embeddings (`balr.embeddings.extract.model_provenance`)."""
    if isinstance(model, NumpyGE2E):
        return EmbeddingProvenance(model.name, model.embedding_dim)
    from balr.embeddings.extract import model_provenance

    return model_provenance(model, model_cfg)


def compare_with_population(
    pipeline: ComparisonPipeline,
    enrollment: Sequence[str | Path],
    test: Sequence[str | Path],
    path: Path,
    vectors_dir: Path | None,
    adapt: str = "auto",
) -> Comparison:
    """The comparison with the scorer adapted to the population at `path` where it shows
    that the calibration does not hold there, else offset as decided (`adapt`:
    `balr.population_decision.decide_adaptation`), the case's recordings checked against
    the population's conditions or the calibration's where it tested the calibration
    (`balr.conditions.population`; else as without a population), its
    population check, and a warning when the case LR is not exceptional among the
    population or when the calibration was fitted on scores adapted to a population with
    other vectors."""
    from balr.compare.population import (
        bound_to_population,
        comparison_adaptation,
        comparison_conditions,
        population_check,
        read_comparison_population,
    )
    from balr.population_decision import retest_warning

    population = read_comparison_population(pipeline, path, vectors_dir, [*enrollment, *test])
    check_population_size(population.population)
    decision = comparison_adaptation(pipeline, population, adapt)
    if decision.adapt:
        pipeline.scorer = adapt_to_population(pipeline.scorer, population.population)[0]
    elif decision.offset:
        pipeline.calibrator = pipeline.calibrator.shifted(decision.offset)
    decision = bound_to_population(pipeline, population, decision)
    conditions = comparison_conditions(pipeline, population, decision)
    if isinstance(conditions, PopulationConditions):
        pipeline.population_conditions = conditions
        pipeline.model_files["channel reference"] = [defaults.CHANNEL_REFERENCE]  # its scale
    # else, as `score test`: a population that did not test the calibration cannot vouch
    # for the case's channel, which is checked as without a population
    result = pipeline.compare(enrollment, test)
    result.population_conditions = (
        conditions.record() if isinstance(conditions, PopulationConditions)
        else {"applied": False, "reason": conditions}
    )  # fmt: skip
    result.population = population.population
    result.population_adaptation = decision
    result.population_check = population_check(pipeline, result, population)
    result.warnings.extend(pipeline.population_warnings(population.given))
    if decision.recheck is not None and decision.recheck.broken:
        result.warnings.append(retest_warning(population.population.source, decision.recheck))
    warning = result.population_check.warning()
    if warning:
        result.warnings.append(warning)
    result.population_files = population.files
    return Comparison(pipeline, result)
