"""`balr score train | test | matrix | calibrate`: fit a scorer, score a trials list, score
all-vs-all, fit a calibrator (the jobs live in `balr.scoring.jobs`)."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.scoring.jobs import (
    calibrate_scores_file,
    score_matrix_file,
    score_trials_file,
    train_scorer,
)

score_app = typer.Typer(
    help="Fit scorers, score trial lists, explain scores.", no_args_is_help=True
)

VECTORS_DIR_HELP = "Where the dataset's vectors were written (binarize --save-dir)."
SPEECH_HELP = (
    "speech_durations.tsv of the recordings (default: the one `balr extract` wrote in the "
    "vectors' folder)."
)


def _unescape(sep: str) -> str:
    """`\\t` typed on the command line -> a tab."""
    return sep.encode().decode("unicode_escape")


@score_app.command("train")
def train(
    train_data: Path = typer.Argument(..., help="Reference dataset with speakers and _ba vectors."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/trainN."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Fit a scorer on the per-speaker statistics of a reference dataset and save it."""
    typer.echo(train_scorer(train_data, save_dir, vectors_dir, overrides or []).summary())


@score_app.command("test")
def test(
    test_data: Path = typer.Argument(..., help="Dataset holding the trials' recordings."),
    trials_path: Path = typer.Argument(..., help="Trials list (enrollment, test columns)."),
    sep: str = typer.Option("\\t", "--sep", help="Trials column separator ('\\t', ',', ...)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/testN."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    explain: int = typer.Option(
        0, "--explain", help="Write the K attributes pushing each score most each way."
    ),
    explain_plot: list[str] | None = typer.Option(
        None, "--explain-plot", help="Bar chart of one trial: number (1 = first) or E::T ids."
    ),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="calibration.json to apply (default: the shipped one)."
    ),
    no_calibration: bool = typer.Option(
        False, "--no-calibration", help="Write the scorer's raw scores."
    ),
    speech_durations: Path | None = typer.Option(None, "--speech-durations", help=SPEECH_HELP),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Score a trials list: scores.csv (with in_conditions and conditions_reason when
    calibrated), metrics.json, DET/Tippett plots, explanations."""
    result = score_trials_file(
        test_data,
        trials_path,
        sep=_unescape(sep),
        save_dir=save_dir,
        vectors_dir=vectors_dir,
        explain=explain,
        explain_plots=explain_plot or [],
        calibration=calibration,
        no_calibration=no_calibration,
        overrides=overrides or [],
        speech_durations=speech_durations,
    )
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
        help="Column of SCORES_CSV naming each trial's group (e.g. corpus): groups weigh equally.",
    ),
    speech_durations: Path | None = typer.Option(None, "--speech-durations", help=SPEECH_HELP),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    vectors: str | None = typer.Option(
        None,
        "--vectors",
        help="ba or emb: vectors describing the calibration population (default: the scored ones).",
    ),
    no_conditions: bool = typer.Option(
        False, "--no-conditions", help="Save no conditions description with the calibration."
    ),
) -> None:
    """Fit a score -> calibrated log-LR map on labelled trials (calibration.json), and the
    description of its conditions (speech durations, population) that `score test` and
    `compare` check."""
    result = calibrate_scores_file(
        scores_csv,
        data,
        method,
        out,
        _unescape(sep),
        column,
        bounded=not unbounded,
        group_column=group_column,
        speech_durations=speech_durations,
        vectors_dir=vectors_dir,
        vector_kind=vectors,
        describe_conditions=not no_conditions,
    )
    typer.echo(result.summary())


@score_app.command("matrix")
def matrix(
    data: Path = typer.Argument(..., help="Dataset: every recording against every recording."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/matrixN."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """All-vs-all scores of single recordings: scores.npy (rows enrollment) and ids.txt."""
    typer.echo(score_matrix_file(data, save_dir, vectors_dir, overrides or []).summary())


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
