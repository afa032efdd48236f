"""`balr score train | test | matrix | calibrate`: fit a scorer, score a trials list, score
all-vs-all, fit a calibrator (the jobs live in `balr.scoring.jobs`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from balr.cli.options import (
    RunOptions,
    audio_formats_option,
    config_name_option,
    config_path_option,
    device_option,
    exist_ok_option,
    population_adapt_option,
    root_dir_option,
    run_options,
    with_config_file,
)
from balr.conditions import DEFAULT_SIMILARITY_PERCENTILE

if TYPE_CHECKING:  # the jobs import torch and the scorers: imported when a command runs
    from balr.scoring.jobs import ScoringRun

logger = logging.getLogger(__name__)

score_app = typer.Typer(
    help="Fit scorers, score trial lists, explain scores.", no_args_is_help=True
)

VECTORS_DIR_HELP = "Where the dataset's vectors were written (binarize --save-dir)."
CALIBRATE_VECTORS_HELP = (
    f"{VECTORS_DIR_HELP} Default (with no --speech-durations): the folder the `score test` "
    "run of SCORES_CSV read them from (its run.json)."
)
SPEECH_HELP = (
    "speech_durations.tsv of the recordings (default: the one `balr extract` wrote in the "
    "vectors' folder, else in the dataset folder's .balr/)."
)


def _unescape(sep: str) -> str:
    """`\\t` typed on the command line -> a tab."""
    return sep.encode().decode("unicode_escape")


def _checked_run(overrides: list[str], **options) -> RunOptions:
    """The run options of `score train/test`; the device is checked (a CUDA device that is
    not there is an error, as in the reference) though balr's scorers compute in NumPy."""
    run = run_options(overrides, **options)
    from balr.distributed import resolve_device

    if resolve_device(run.device).type != "cpu":
        logger.info("--device %s: balr's scorers compute on the CPU (NumPy)", run.device)
    return run


def _scoring_run(
    run: RunOptions,
    vectors_dir: Path | None,
    root_dir: Path | None = None,
    kind: type[ScoringRun] | None = None,
    **options,
) -> ScoringRun:
    """The typed options of a scoring job (`kind`, with its own `options`), the scorer
    settings composed once from the overrides (`kind` None: a `ScoringRun`)."""
    from balr.scoring.config import ScoreSettings
    from balr.scoring.jobs import ScoringRun

    kind = kind or ScoringRun
    return kind(
        settings=ScoreSettings.from_overrides(run.overrides),
        save_dir=run.save_dir,
        exist_ok=run.exist_ok,
        vectors_dir=vectors_dir,
        reading=run.reading(root_dir),
        **options,
    )


@score_app.command("train")
def train(
    train_data: Path = typer.Argument(..., help="Reference dataset with speakers and _ba vectors."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/train."),
    exist_ok: bool | None = exist_ok_option(),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    audio_formats: list[str] | None = audio_formats_option(),
    root_dir: Path | None = root_dir_option(),
    device: str | None = device_option(),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Fit a scorer on the per-speaker statistics of a reference dataset and save it."""
    from balr.scoring.jobs import train_scorer

    run = _checked_run(
        with_config_file(config_path, config_name, overrides),
        save_dir=save_dir,
        exist_ok=exist_ok,
        audio_formats=audio_formats,
        device=device,
    )
    trained = train_scorer(train_data, _scoring_run(run, vectors_dir, root_dir))
    typer.echo(trained.summary())


POPULATION_HELP = (
    "Relevant population: a dataset (folder, CSV, Kaldi dir) of other speakers in the case's "
    "conditions, with BA vectors; the beta scorer adapts to it where its different-speaker "
    "comparisons show that the calibration does not hold there (docs/population.md)."
)
TEST_POPULATION_HELP = POPULATION_HELP + (
    " The LRs stay within what its own comparisons support, and where it tested the "
    "calibration a trial is out of conditions only when out of its conditions and the "
    "calibration's."
)
CALIBRATE_POPULATION_HELP = (
    "The population SCORES_CSV was scored with (`score test --population`): checked, and "
    "recorded in the calibration so that `score test` warns when run without it."
)
EXPLAIN_HELP = "Write the K attributes pushing each score most each way."
EXPLAIN_PLOT_HELP = "Bar chart of one trial: number (1 = first) or E::T ids."
KEEP_SAME_RECORDING_HELP = (
    "Keep trials comparing a recording with itself in EER and Cllr (default: left out; "
    "flagged in scores.csv either way)."
)
SAME_RECORDING_BY_ID_HELP = (
    "Flag same-recording trials by id only, without decoding the audio (about 0.1 s per "
    "recording saved)."
)


@score_app.command("test")
def test(
    test_data: Path = typer.Argument(..., help="Dataset holding the trials' recordings."),
    trials_path: Path = typer.Argument(..., help="Trials list (enrollment, test columns)."),
    sep: str = typer.Option("\\t", "--sep", help="Trials column separator ('\\t', ',', ...)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/score."),
    exist_ok: bool | None = exist_ok_option(),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    audio_formats: list[str] | None = audio_formats_option(),
    root_dir: Path | None = root_dir_option(),
    device: str | None = device_option(),
    explain: int = typer.Option(0, "--explain", help=EXPLAIN_HELP),
    explain_plot: list[str] | None = typer.Option(None, "--explain-plot", help=EXPLAIN_PLOT_HELP),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="calibration.json to apply (default: the shipped one)."
    ),
    no_calibration: bool = typer.Option(
        False, "--no-calibration", help="Write the scorer's raw scores."
    ),
    speech_durations: Path | None = typer.Option(None, "--speech-durations", help=SPEECH_HELP),
    keep_same_recording: bool = typer.Option(
        False, "--keep-same-recording", help=KEEP_SAME_RECORDING_HELP
    ),
    same_recording_by_id: bool = typer.Option(
        False, "--same-recording-by-id", help=SAME_RECORDING_BY_ID_HELP
    ),
    population: Path | None = typer.Option(None, "--population", help=TEST_POPULATION_HELP),
    population_adapt: str = population_adapt_option(),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Score a trials list: scores.csv (with same_recording, and in_conditions and
    conditions_reason when calibrated), metrics.json, DET/Tippett plots, explanations."""
    from balr.scoring.jobs import TrialScoring, score_trials_file

    run = _checked_run(
        with_config_file(config_path, config_name, overrides),
        save_dir=save_dir,
        exist_ok=exist_ok,
        audio_formats=audio_formats,
        device=device,
    )
    options = _scoring_run(
        run,
        vectors_dir,
        root_dir,
        TrialScoring,
        sep=_unescape(sep),
        explain=explain,
        explain_plots=tuple(explain_plot or ()),
        calibration=calibration,
        no_calibration=no_calibration,
        speech_durations=speech_durations,
        keep_same_recording=keep_same_recording,
        same_recording_by_id=same_recording_by_id,
        population=population,
        population_adapt=population_adapt,
    )
    result = score_trials_file(test_data, trials_path, options)
    typer.echo(result.summary())


@score_app.command("calibrate")
def calibrate(
    scores_csv: Path = typer.Argument(..., help="scores.csv written by `balr score test`."),
    data: Path = typer.Argument(..., help="Dataset giving the speakers of the trials' ids."),
    method: str = typer.Option(
        "logistic", "--method", help="logistic, pav or qmf (logistic + speech duration terms)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Default: calibration.json beside SCORES_CSV."
    ),
    sep: str = typer.Option("\\t", "--sep", help="Column separator of SCORES_CSV."),
    column: str | None = typer.Option(
        None, "--column", help="Score column (default: raw_score if present, else scores)."
    ),
    unbounded: bool = typer.Option(
        False, "--unbounded", help="Do not clip LLRs to the ELUB bounds."
    ),
    group_column: str | None = typer.Option(
        None,
        "--group-column",
        help="Column of SCORES_CSV naming each trial's group (e.g. corpus): groups weigh equally "
        "(fit and ELUB bounds; conditions threshold taken per group, lowest kept).",
    ),
    speech_durations: Path | None = typer.Option(None, "--speech-durations", help=SPEECH_HELP),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=CALIBRATE_VECTORS_HELP),
    vectors: str | None = typer.Option(
        None,
        "--vectors",
        help="ba or emb: vectors describing the calibration population (default: the scored ones).",
    ),
    no_conditions: bool = typer.Option(
        False, "--no-conditions", help="Save no conditions description with the calibration."
    ),
    conditions_percentile: float = typer.Option(
        DEFAULT_SIMILARITY_PERCENTILE,
        "--conditions-percentile",
        help="% of calibration recordings taken as least similar still in conditions "
        "(lower: fewer warnings, in and out of domain).",
    ),
    population: Path | None = typer.Option(None, "--population", help=CALIBRATE_POPULATION_HELP),
) -> None:
    """Fit a score -> calibrated log-LR map on labelled trials (calibration.json), and the
    description of its conditions (speech durations, population) that `score test` and
    `compare` check."""
    from balr.scoring.jobs import CalibrationFit, calibrate_scores_file

    fit = CalibrationFit(
        method=method,
        out=out,
        sep=_unescape(sep),
        column=column,
        bounded=not unbounded,
        group_column=group_column,
        speech_durations=speech_durations,
        vectors_dir=vectors_dir,
        vector_kind=vectors,
        describe_conditions=not no_conditions,
        conditions_percentile=conditions_percentile,
        population=population,
    )
    typer.echo(calibrate_scores_file(scores_csv, data, fit).summary())


@score_app.command("matrix")
def matrix(
    data: Path = typer.Argument(..., help="Dataset: every recording against every recording."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/matrixN."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    population: Path | None = typer.Option(None, "--population", help=POPULATION_HELP),
    config_path: Path | None = config_path_option(),
    config_name: str = config_name_option(),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """All-vs-all scores of single recordings: scores.npy (rows enrollment) and ids.txt."""
    from balr.scoring.jobs import MatrixScoring, score_matrix_file

    run = run_options(with_config_file(config_path, config_name, overrides), save_dir=save_dir)
    options = _scoring_run(run, vectors_dir, kind=MatrixScoring, population=population)
    typer.echo(score_matrix_file(data, options).summary())


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
