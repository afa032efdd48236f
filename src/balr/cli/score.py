"""`balr score train | test | matrix`: fit a scorer, score a trials list, score all-vs-all."""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from omegaconf import DictConfig

from balr import defaults
from balr.calibration import METHODS, Calibrator
from balr.config import save_config
from balr.data import AudioDataset, Trials, load_trials
from balr.errors import ConfigError, DataError
from balr.fileio import atomic_path, atomic_write_text, next_run_dir
from balr.scoring import LRScorer, Scorer, dataset_statistics, make_scorer
from balr.scoring.config import score_config, scorer_params
from balr.scoring.explain import write_explanations
from balr.scoring.pairs import matrix_scores
from balr.scoring.plots import plot_explanation
from balr.scoring.trials import CellSide, TrialCells, explain_trials, score_trials

logger = logging.getLogger(__name__)

RUNS_DIR = Path("runs") / "scorer"
score_app = typer.Typer(
    help="Fit scorers, score trial lists, explain scores.", no_args_is_help=True
)

VECTORS_DIR_HELP = "Where the dataset's vectors were written (binarize --save-dir)."


def _open_dataset(path: Path, vectors_dir: Path | None) -> AudioDataset:
    return AudioDataset.from_path(path, output_dir=vectors_dir)


def resolve_scorer(cfg: DictConfig, overrides: list[str]) -> Scorer:
    """The scorer to test with: the checkpoint's, the shipped one (beta, speech), or a
    cosine scorer (needs no fitting)."""
    checkpoint = cfg.scorer.checkpoint_path
    if not checkpoint:
        if cfg.scorer.name == "cosine":
            return make_scorer("cosine", **scorer_params(cfg))
        checkpoint = defaults.shipped_scorer(cfg.scorer.name)
        if checkpoint is None:
            raise ConfigError(
                f"scorer '{cfg.scorer.name}' needs scorer.checkpoint_path=PATH (a "
                "scorer.safetensors from `balr score train`); balr ships only beta and speech"
            )
        logger.info(
            "no scorer.checkpoint_path: using the shipped %s scorer %s", cfg.scorer.name, checkpoint
        )
    scorer = Scorer.load(checkpoint)
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("scorer=")]
    if chosen and chosen[-1] != scorer.name:
        raise ConfigError(f"{checkpoint}: holds a '{scorer.name}' scorer, not '{chosen[-1]}'")
    for item in overrides:  # scoring-time hyper-parameters may be changed on a fitted scorer
        key = item.split("=", 1)[0].removeprefix("scorer.")
        if key in scorer.scoring_params:
            setattr(scorer, key, type(getattr(scorer, key))(cfg.scorer[key]))
    return scorer


def resolve_calibration(
    cfg: DictConfig, scorer: Scorer, path: Path | None, disabled: bool
) -> tuple[Calibrator | None, str]:
    """The calibrator to apply and where it came from: `--calibration PATH`, else the shipped
    one matching a shipped scorer (beta; cosine of embeddings), else none."""
    if disabled:
        if path is not None:
            raise ConfigError("--calibration and --no-calibration exclude each other")
        return None, "none (--no-calibration)"
    if path is not None:
        return Calibrator.load(path), str(path)
    if cfg.scorer.checkpoint_path:
        logger.warning(
            "scorer.checkpoint_path given without --calibration: scores are not calibrated "
            "(fit a calibrator with `balr score calibrate`)"
        )
        return None, "none (user checkpoint without --calibration)"
    shipped = defaults.shipped_calibration(scorer.name, getattr(scorer, "vectors", None))
    if shipped is None:
        logger.warning(
            "no shipped calibration for scorer '%s': scores are not calibrated", scorer.name
        )
        return None, f"none (no shipped calibration for {scorer.name})"
    if scorer.name == "cosine":
        logger.info(
            "cosine of embeddings: the shipped calibration assumes the default %s embeddings",
            defaults.EMBEDDING_MODEL,
        )
    logger.info("calibrating with the shipped %s", shipped)
    return Calibrator.load(shipped), str(shipped)


@score_app.command("train")
def train(
    train_data: Path = typer.Argument(..., help="Reference dataset with speakers and _ba vectors."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/trainN."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Fit a scorer on the per-speaker statistics of a reference dataset and save it."""
    cfg = score_config(overrides)
    scorer = make_scorer(cfg.scorer.name, **scorer_params(cfg))
    dataset = _open_dataset(train_data, vectors_dir)
    if scorer.needs_fit:
        speakers, stats = dataset_statistics(dataset)
        scorer.fit(stats)
        summary = (
            f"{len(dataset)} recordings, {len(speakers)} speakers, {stats.shape[1]} attributes"
        )
    else:
        summary = "nothing to fit"
    save_dir = save_dir or next_run_dir(RUNS_DIR)
    path = scorer.save(save_dir)
    cfg.scorer.checkpoint_path = str(path)
    save_config(cfg, save_dir / "config.yaml")
    typer.echo(f"{scorer.name} scorer ({summary}) saved to {path}")


def _side(cells: list[list[str]], row_of: dict[str, int]) -> CellSide:
    """Rows of every id of every cell (-1 where the recording has no vector)."""
    lengths = np.fromiter(map(len, cells), np.intp, len(cells))
    ids = pd.Series(list(chain.from_iterable(cells)), dtype=object)
    rows = ids.map(row_of).fillna(-1).to_numpy(dtype=np.intp)
    return CellSide.from_flat(rows, lengths)


def trial_vectors(dataset: AudioDataset, trials: Trials, kind: str):
    """`(vectors of each distinct recording used, read once, cells, valid-trial mask)`."""
    index_of = {item_id: i for i, item_id in enumerate(dataset.ids)}
    trials.check_ids(index_of)
    wanted = np.array([index_of[i] for i in trials.unique_ids()], dtype=np.int64)
    present, vectors = dataset.stack_vectors(kind, wanted)
    row_of = {dataset.items[i].id: row for row, i in enumerate(present)}
    enroll, test = _side(trials.enrollment, row_of), _side(trials.test, row_of)
    valid = enroll.valid() & test.valid()
    if not valid.all():
        logger.warning(
            "%d of %d trials use a recording without a %s vector: their score is NaN",
            int((~valid).sum()),
            len(valid),
            kind,
        )
    if not valid.any():
        raise DataError(f"{trials.source}: no trial has vectors for all its recordings")
    return vectors, TrialCells(enroll.subset(valid), test.subset(valid)), valid


def _write_scores(trials: Trials, scores: np.ndarray, raw: np.ndarray | None, path: Path) -> None:
    """scores.csv: the trials plus `scores` (calibrated LLRs if calibrated) and `raw_score`."""
    frame = trials.frame.copy()
    frame["scores"] = scores
    if raw is not None:
        frame["raw_score"] = raw
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=trials.sep, index=False)


def _write_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    save_dir: Path,
    name: str,
    raw: np.ndarray | None = None,
    calibration: str = "none",
) -> str:
    """metrics.json and DET, Tippett, PAV, ECE plots on the labelled, scored trials (calibrated
    LLRs when calibrated; the raw scores' Cllr and minCllr are kept for comparison)."""
    from balr.evaluation import compute_metrics, write_evaluation

    keep = (labels >= 0) & np.isfinite(scores)
    n_target, n_nontarget = int((labels[keep] == 1).sum()), int((labels[keep] == 0).sum())
    if not n_target or not n_nontarget:
        return (
            f"no metrics: {n_target} target and {n_nontarget} non-target trials with known "
            "speakers (both are needed)"
        )
    metrics = compute_metrics(scores[keep], labels[keep])
    metrics.update(
        scorer=name,
        calibration=calibration,
        n_trials=len(scores),
        n_scored=int(np.isfinite(scores).sum()),
        n_unlabelled=int((labels < 0).sum()),
    )
    summary = f"EER {metrics['eer']:.4f}, Cllr {metrics['cllr']:.4f}"
    if raw is not None:
        raw_metrics = compute_metrics(raw[keep], labels[keep])
        metrics.update(raw_cllr=raw_metrics["cllr"], raw_min_cllr=raw_metrics["min_cllr"])
        summary += f" (raw {raw_metrics['cllr']:.4f})"
    write_evaluation(save_dir, metrics, scores[keep], labels[keep], title=name)
    return f"{summary}, minCllr {metrics['min_cllr']:.4f}"


def _find_trial(trials: Trials, spec: str) -> int:
    """0-based row of `spec`: a trial number (1 = first trial) or `ENROLLMENT::TEST` cells."""
    if spec.strip().isdigit():
        number = int(spec)
        if not 1 <= number <= len(trials):
            raise DataError(f"--explain-plot {spec}: trials are numbered 1 to {len(trials)}")
        return number - 1
    if "::" not in spec:
        raise DataError(f"--explain-plot {spec}: give a trial number or ENROLLMENT::TEST ids")
    enroll, test = (part.split(",") for part in spec.split("::", 1))
    for row, (e, t) in enumerate(zip(trials.enrollment, trials.test, strict=True)):
        if e == enroll and t == test:
            return row
    raise DataError(f"--explain-plot {spec}: no such trial in {trials.source}")


def _plot_trials(scorer, vectors, cells, valid, trials, specs, save_dir, k) -> list[Path]:
    """One bar chart per requested trial (explanation_trialN.png)."""
    position = np.cumsum(valid) - 1  # row among the scored trials
    paths = []
    for spec in specs:
        row = _find_trial(trials, spec)
        if not valid[row]:
            raise DataError(f"trial {row + 1}: a recording has no vector, nothing to explain")
        one = TrialCells(
            CellSide([cells.enroll.cell(position[row])]), CellSide([cells.test.cell(position[row])])
        )
        _, terms, enroll, test = next(explain_trials(scorer, vectors, one))
        path = save_dir / f"explanation_trial{row + 1}.png"
        title = (
            f"trial {row + 1}: {','.join(trials.enrollment[row])} vs {','.join(trials.test[row])}"
        )
        plot_explanation(terms[0], enroll[0, :, 0], test[0, :, 0], path, k=k, title=title)
        paths.append(path)
    return paths


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
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """Score a trials list: scores.csv, metrics.json, DET/Tippett plots, explanations."""
    overrides = list(overrides or [])
    cfg = score_config(overrides)
    scorer = resolve_scorer(cfg, overrides)
    calibrator, calibration_source = resolve_calibration(cfg, scorer, calibration, no_calibration)
    if (explain or explain_plot) and not isinstance(scorer, LRScorer):
        raise ConfigError(f"scorer '{scorer.name}' is not a likelihood ratio: nothing to explain")
    dataset = _open_dataset(test_data, vectors_dir)
    trials = load_trials(trials_path, sep=sep.encode().decode("unicode_escape"))
    labels = trials.labels(dataset)
    vectors, cells, valid = trial_vectors(dataset, trials, scorer.vector_kind)
    scores = np.full(len(trials), np.nan)
    scores[valid] = score_trials(scorer, vectors, cells, chunk=cfg.chunk_size)
    raw = None
    if calibrator is not None:
        raw, scores = scores, calibrator.transform(scores)  # NaN (no vector) stays NaN
    save_dir = save_dir or next_run_dir(RUNS_DIR, prefix="test")
    _write_scores(trials, scores, raw, save_dir / "scores.csv")
    summary = _write_metrics(scores, labels, save_dir, scorer.name, raw, calibration_source)
    if explain:
        names = [",".join(c) for c in trials.enrollment], [",".join(c) for c in trials.test]
        keep = np.flatnonzero(valid)
        write_explanations(
            save_dir / "explanations.csv",
            scorer,
            vectors,
            cells,
            [names[0][i] for i in keep],
            [names[1][i] for i in keep],
            explain,
            chunk=cfg.chunk_size,
            trial_numbers=keep + 1,
        )
    _plot_trials(scorer, vectors, cells, valid, trials, explain_plot or [], save_dir, explain or 10)
    typer.echo(
        f"{len(trials)} trials scored with {scorer.name}, calibration {calibration_source}; "
        f"{summary}; outputs in {save_dir}"
    )


def _labelled_scores(scores_csv: Path, dataset: AudioDataset, sep: str, column: str | None):
    """`(scores, labels, column used)` of the trials with a known speaker on both sides and a
    finite score; the raw scores (`raw_score`) are preferred over calibrated ones."""
    trials = load_trials(scores_csv, sep=sep)
    columns = list(trials.frame.columns)
    column = column or ("raw_score" if "raw_score" in columns else "scores")
    if column not in columns:
        raise DataError(f"{scores_csv}: no '{column}' column (columns: {', '.join(columns)})")
    scores = pd.to_numeric(trials.frame[column], errors="coerce").to_numpy(np.float64)
    labels = trials.labels(dataset)
    keep = (labels >= 0) & np.isfinite(scores)
    return scores[keep], labels[keep], column


@score_app.command("calibrate")
def calibrate(
    scores_csv: Path = typer.Argument(..., help="scores.csv written by `balr score test`."),
    data: Path = typer.Argument(..., help="Dataset giving the speakers of the trials' ids."),
    method: str = typer.Option("logistic", "--method", help="logistic or pav."),
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
) -> None:
    """Fit a score -> calibrated log-LR map on labelled trials (calibration.json)."""
    from balr.evaluation import compute_metrics

    if method not in METHODS:
        raise ConfigError(f"--method {method}: expected one of {', '.join(METHODS)}")
    dataset = AudioDataset.from_path(data)
    scores, labels, column = _labelled_scores(
        scores_csv, dataset, sep.encode().decode("unicode_escape"), column
    )
    description = f"{method} fitted on '{column}' of {scores_csv}"
    calibrator = Calibrator(method, not unbounded, description).fit(scores, labels)
    out = out or scores_csv.parent / "calibration.json"
    calibrator.save(out)
    before = compute_metrics(scores, labels)["cllr"]
    after = compute_metrics(calibrator.transform(scores), labels)["cllr"]
    typer.echo(
        f"{method} calibrator on {calibrator.n_target_} target and {calibrator.n_nontarget_} "
        f"non-target trials: Cllr {before:.4f} -> {after:.4f} on these trials; saved to {out}"
    )


@score_app.command("matrix")
def matrix(
    data: Path = typer.Argument(..., help="Dataset: every recording against every recording."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: runs/scorer/matrixN."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides"),
) -> None:
    """All-vs-all scores of single recordings: scores.npy (rows enrollment) and ids.txt."""
    overrides = list(overrides or [])
    scorer = resolve_scorer(score_config(overrides), overrides)
    dataset = _open_dataset(data, vectors_dir)
    indices, vectors = dataset.stack_vectors(scorer.vector_kind)
    if not len(indices):
        raise DataError(f"{data}: no item has a {scorer.vector_kind} vector")
    save_dir = save_dir or next_run_dir(RUNS_DIR, prefix="matrix")
    target = save_dir / "scores.npy"
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(len(indices),) * 2)
        matrix_scores(scorer, vectors, out=out)
        out.flush()
        del out
    ids = "".join(f"{dataset.items[i].id}\n" for i in indices)
    atomic_write_text(save_dir / "ids.txt", ids)
    typer.echo(f"{len(indices)} x {len(indices)} {scorer.name} scores in {target}")


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
