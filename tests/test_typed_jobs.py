"""Library jobs take typed options, composed once by the CLI: no job takes `key=value`
override strings (docs/architecture.md, issue 17 point 5)."""

from __future__ import annotations

import inspect

from balr import defaults
from balr.binary_attributes.binarize import binarize_path
from balr.binary_attributes.trainer import train_encoder
from balr.compare import compare_files
from balr.embeddings.extract import ExtractionRun, extract_config, extract_dataset_embeddings
from balr.scoring.jobs import (
    calibrate_scores_file,
    score_matrix_file,
    score_trials_file,
    train_scorer,
)

JOBS = (
    extract_dataset_embeddings,
    train_encoder,
    binarize_path,
    train_scorer,
    score_trials_file,
    score_matrix_file,
    calibrate_scores_file,
    compare_files,
)


def test_no_library_job_takes_override_strings():
    for job in JOBS:
        assert "overrides" not in inspect.signature(job).parameters, job.__name__


def test_an_extraction_run_holds_the_config_composed_once():
    run = ExtractionRun(extract_config(["embeddings.min_speech_s=2", "embeddings.vad=energy"]))
    assert (run.config.embeddings.min_speech_s, run.config.embeddings.vad) == (2.0, "energy")
    assert run.config.embeddings.model.name == defaults.EMBEDDING_MODEL
    assert (run.save_dir, run.force, run.save_output, run.reading.audio_formats) == (
        None,
        False,
        True,
        (),
    )
