"""The models of a comparison, chosen as for `balr score test` (`balr.scoring.selection`):
the shipped ones unless checkpoints are given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from balr import defaults
from balr.audit import calibration_files, scorer_file
from balr.binary_attributes.encoder_numpy import NumpyEncoder
from balr.calibration import Calibrator
from balr.conditions import ConditionsDescription
from balr.conditions.channel import ChannelReference, shipped_channel_reference
from balr.conditions.population import PopulationConditions
from balr.errors import ModelError
from balr.report.text import calibration_text, conditions_text
from balr.scoring import DEFAULT_SCORER, LRScorer, Scorer
from balr.scoring.selection import (
    CalibrationChoice,
    ScorerChoice,
    select_calibration,
    select_scorer,
)

if TYPE_CHECKING:
    from balr.binary_attributes.model import BinaryAttributeEncoder
    from balr.embeddings.base import EmbeddingModel
    from balr.embeddings.ge2e_numpy import NumpyGE2E


@dataclass
class ComparisonModels:
    """The BAE, LR scorer and calibration of a comparison, with their description."""

    encoder: BinaryAttributeEncoder | NumpyEncoder
    scorer: LRScorer
    calibrator: Calibrator | None = None
    typicality: LRScorer | None = None  # the shipped speech scorer, for explanations
    description: dict[str, str] = field(default_factory=dict)
    reference_llrs: Path | None = None  # reference target / non-target LLRs of these models
    conditions: ConditionsDescription | None = None  # of the calibration (None: it has none)
    model_files: dict[str, list[Path]] = field(default_factory=dict)  # role -> files (audit)
    #: the population the calibration's scores were adapted to (`CalibrationChoice.population`)
    calibration_population: dict | None = None
    calibration_source: str | None = None  # the calibration file (None: uncalibrated)
    #: the channel profiles of the calibration's recordings (the shipped calibration's only)
    channel: ChannelReference | None = None
    #: a relevant population that tested the calibration: a recording is out of conditions
    #: only when out of its conditions and the calibration's (`balr.conditions.population`)
    population_conditions: PopulationConditions | None = None


def load_models(
    embedding_model: EmbeddingModel | NumpyGE2E,
    encoder_checkpoint: str | Path | None = None,
    scorer_checkpoint: str | Path | None = None,
    calibration: str | Path | None = None,
    use_calibration: bool = True,
) -> ComparisonModels:
    """Load the stages; missing paths fall back to the shipped defaults (the beta scorer
    with its calibration, the speech scorer's typicality for explanations, the reference
    LLRs of the report)."""
    encoder_path = Path(encoder_checkpoint or defaults.require(defaults.BAE_CHECKPOINT, "BAE"))
    choice = select_lr_scorer(scorer_checkpoint)
    calibrated = select_calibration(
        choice, calibration if use_calibration else None, not use_calibration, quiet=True
    )
    shipped = not choice.user_checkpoint
    typicality = None
    if shipped and defaults.TYPICALITY_CHECKPOINT.is_file():
        typicality = Scorer.load(defaults.require(defaults.TYPICALITY_CHECKPOINT, "typicality"))
    channel = shipped_channel_reference(calibrated)
    reference = None
    if shipped and defaults.REFERENCE_LLRS.is_file():
        reference = defaults.require(defaults.REFERENCE_LLRS, "reference LLRs")
    return ComparisonModels(
        load_encoder(encoder_path),
        choice.scorer,
        calibrated.calibrator,
        typicality,
        describe_models(embedding_model, encoder_path, choice, calibrated),
        reference_llrs=reference,
        conditions=calibrated.conditions,
        model_files={
            "binary-attribute encoder": [encoder_path],
            "scorer": [scorer_file(choice.checkpoint)],
            **calibration_files(calibrated),
            "typicality scorer": [defaults.TYPICALITY_CHECKPOINT] if typicality else [],
            "channel reference": [defaults.CHANNEL_REFERENCE] if channel else [],
        },
        calibration_population=calibrated.population,
        calibration_source=calibrated.source if calibrated.calibrator is not None else None,
        channel=channel,
    )


def load_encoder(path: Path) -> BinaryAttributeEncoder | NumpyEncoder:
    """The encoder of `path` in numpy (a checked safetensors file: the same bits, no torch),
    else the torch module (which reads `.pt` files and says what is wrong with a bad one)."""
    encoder = NumpyEncoder.load(path)
    if encoder is None:
        from balr.binary_attributes.model import BinaryAttributeEncoder

        encoder = BinaryAttributeEncoder.load(path)
    return encoder


def select_lr_scorer(checkpoint: str | Path | None) -> ScorerChoice:
    """The scorer of `checkpoint` (the shipped beta scorer when None); ModelError unless it
    is a likelihood-ratio scorer (one log-LR term per attribute)."""
    choice = select_scorer(DEFAULT_SCORER, checkpoint, quiet=True)
    if not isinstance(choice.scorer, LRScorer):
        raise ModelError(
            f"{choice.checkpoint}: '{choice.scorer.name}' is not a likelihood-ratio scorer"
        )
    return choice


def describe_models(
    embedding_model: EmbeddingModel | NumpyGE2E,
    encoder_path: Path,
    choice: ScorerChoice,
    calibrated: CalibrationChoice,
) -> dict[str, str]:
    """One line per model of the comparison, for the report."""
    description = {
        "embedding model": f"{embedding_model.name} ({embedding_model.embedding_dim}-dim, "
        f"{embedding_model.sample_rate} Hz)",
        "binary-attribute encoder": str(encoder_path),
        "scorer": f"{choice.scorer.name} ({choice.checkpoint})",
        "calibration": calibration_text(calibrated.calibrator, calibrated.source),
    }
    if calibrated.calibrator is not None:
        description["calibration conditions"] = conditions_text(calibrated.conditions)
    return description
