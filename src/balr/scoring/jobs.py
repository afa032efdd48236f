"""The jobs of `balr score`, as library functions: fit and save a scorer, score a trials
file (scores, calibration, metrics, explanations), score all-vs-all, fit a calibrator.

Each returns a small result whose `summary()` is the line the command prints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from balr.audit import (
    RUN_RECORD,
    audit_record,
    calibration_files,
    population_files,
    score_inputs,
    scorer_file,
    write_record,
)
from balr.calibration import METHODS, CalibrationBundle, Calibrator, make_calibrator
from balr.conditions import (
    DEFAULT_SIMILARITY_PERCENTILE,
    NO_DESCRIPTION,
    ConditionsDescription,
    TrialConditions,
    trial_conditions,
)
from balr.config import save_config
from balr.data import AudioDataset, Trials, load_trials
from balr.data.validation import BadVector, describe_bad
from balr.embeddings.batch import SPEECH_FILE, find_speech_durations, read_speech_durations
from balr.errors import ConfigError, DataError
from balr.evaluation.metrics import cllr, compute_metrics
from balr.evaluation.outputs import TrialMetrics, write_trial_metrics
from balr.evaluation.score_files import read_labelled_trials
from balr.fileio import atomic_path, atomic_write_json, atomic_write_text, next_run_dir, run_dir
from balr.population import Population, adapt_to_population, exclude_case, read_population
from balr.scoring import SCORERS, LRScorer, Scorer, dataset_statistics, make_scorer
from balr.scoring.config import check_attribute_count, score_config, scorer_params
from balr.scoring.explain import write_explanations
from balr.scoring.pairs import matrix_scores
from balr.scoring.plots import plot_explanation
from balr.scoring.same_recording import COLUMN, SameRecordingTrials, find_same_recording_trials
from balr.scoring.selection import CalibrationChoice, select_calibration, select_configured_scorer
from balr.scoring.trials import CellSide, TrialCells, explain_trials, score_trials

logger = logging.getLogger(__name__)

RUNS_DIR = Path("runs") / "scorer"  # `score matrix` runs: runs/scorer/matrixN
SCORER_RUN_DIR = "runs/scorer/train"  # the reference's default folders (`balr.fileio.run_dir`)
SCORE_RUN_DIR = "runs/score"
#: attributes drawn each way in an explanation plot when no `explain` K is given
PLOTTED_ATTRIBUTES = 10


@dataclass(frozen=True)
class DatasetReading:
    """How a scoring job reads its dataset, besides the vectors' folder: the extensions
    scanned in a directory (`--audio-formats`, empty: all) and the start of a CSV's relative
    paths (`--root-dir`)."""

    audio_formats: tuple[str, ...] = ()
    root_dir: Path | None = None


def _open_dataset(
    path: Path, vectors_dir: Path | None, reading: DatasetReading | None = None
) -> AudioDataset:
    """The dataset at `path`, its vectors under `vectors_dir` (`binarize --save-dir`)."""
    reading = reading or DatasetReading()
    return AudioDataset.from_path(
        path, reading.audio_formats, output_dir=vectors_dir, root_dir=reading.root_dir
    )


# ---------------------------------------------------------------------- speech durations


def dataset_speech_durations(
    dataset: AudioDataset, vectors_dir: Path | None = None, path: Path | None = None
) -> dict[str, float] | None:
    """`{id: net speech seconds}` written by `balr extract`: the file `path` if given, else
    the `speech_durations.tsv` of the vectors' folder (`vectors_dir`, else the dataset's
    folder, where `extract` writes it); None when there is none."""
    if path is not None:
        if not Path(path).is_file():
            raise DataError(f"--speech-durations {path}: no such file")
        return read_speech_durations(path)
    return find_speech_durations(vectors_dir or dataset.root)


def side_seconds(cells: Sequence[Sequence[str]], durations: dict[str, float] | None) -> np.ndarray:
    """Net speech seconds of each cell: the sum over its recordings (NaN if one is unknown)."""
    durations = durations or {}
    return np.array([sum(durations.get(i, np.nan) for i in cell) for cell in cells], float)


def trial_seconds(trials: Trials, durations: dict[str, float] | None) -> np.ndarray:
    """`(trials, 2)` net speech seconds of the enrollment and test side of each trial."""
    return np.column_stack(
        [side_seconds(trials.enrollment, durations), side_seconds(trials.test, durations)]
    )


# ---------------------------------------------------------------------- score train


@dataclass(frozen=True)
class TrainedScorer:
    scorer: Scorer
    path: Path  # the checkpoint written
    fitted_on: str  # what it learned from, or "nothing to fit"

    def summary(self) -> str:
        return f"{self.scorer.name} scorer ({self.fitted_on}) saved to {self.path}"


def train_scorer(
    train_data: Path,
    save_dir: Path | None = None,
    vectors_dir: Path | None = None,
    overrides: Sequence[str] = (),
    exist_ok: bool = False,
    reading: DatasetReading | None = None,
) -> TrainedScorer:
    """Fit the configured scorer on the per-speaker statistics of a reference dataset; save
    it and its config.yaml in `save_dir` (default `runs/scorer/train`; an existing one
    becomes `...train2`, `...train3` unless `exist_ok`: `balr.fileio.run_dir`)."""
    cfg = score_config(overrides)
    scorer = make_scorer(cfg.scorer.name, **scorer_params(cfg))
    dataset = _open_dataset(train_data, vectors_dir, reading)
    fitted_on = "nothing to fit"
    if scorer.needs_fit:
        bad: list[BadVector] = []
        speakers, stats = dataset_statistics(dataset, bad)
        check_attribute_count(cfg, stats.shape[1], train_data)
        scorer.fit(stats)
        fitted_on = (
            f"{len(dataset) - len(bad)} recordings, {len(speakers)} speakers, "
            f"{stats.shape[1]} attributes"
        )
        if bad:
            fitted_on += f"; {describe_bad(bad)} left out"
    save_dir = run_dir(save_dir, SCORER_RUN_DIR, exist_ok)
    path = scorer.save(save_dir)
    cfg.scorer.checkpoint_path = str(path)
    save_config(cfg, save_dir / "config.yaml")
    return TrainedScorer(scorer, path, fitted_on)


# ---------------------------------------------------------------------- score test


def _side(cells: list[list[str]], row_of: dict[str, int]) -> CellSide:
    """Rows of every id of every cell (-1 where the recording has no vector)."""
    lengths = np.fromiter(map(len, cells), np.intp, len(cells))
    ids = pd.Series(list(chain.from_iterable(cells)), dtype=object)
    rows = ids.map(row_of).fillna(-1).to_numpy(dtype=np.intp)
    return CellSide.from_flat(rows, lengths)


def trial_vectors(
    dataset: AudioDataset, trials: Trials, kind: str, bad: list[BadVector] | None = None
) -> tuple[np.ndarray, TrialCells, np.ndarray]:
    """`(vectors of each distinct recording used, read once, cells, valid-trial mask)`.
    A bad vector raises DataError naming its file; with a `bad` list it is collected there
    and the trials using it are not valid (their score is NaN), as those without vectors."""
    index_of = {item_id: i for i, item_id in enumerate(dataset.ids)}
    trials.check_ids(index_of)
    wanted = np.array([index_of[i] for i in trials.unique_ids()], dtype=np.int64)
    present, vectors = dataset.stack_vectors(kind, wanted, bad=bad)
    row_of = {dataset.items[i].id: row for row, i in enumerate(present)}
    enroll, test = _side(trials.enrollment, row_of), _side(trials.test, row_of)
    valid = enroll.valid() & test.valid()
    if not valid.all():
        logger.warning(
            "%d of %d trials use a recording without a valid %s vector: their score is NaN",
            int((~valid).sum()),
            len(valid),
            kind,
        )
    if not valid.any():
        raise DataError(f"{trials.source}: no trial has vectors for all its recordings")
    return vectors, TrialCells(enroll.subset(valid), test.subset(valid)), valid


def _uses(trials: Trials, ids: set[str]) -> np.ndarray:
    """Per trial: whether a recording of either cell is one of `ids`."""
    hits = np.zeros(len(trials), bool)
    for side in (trials.enrollment, trials.test):
        owner = np.repeat(np.arange(len(side)), np.fromiter(map(len, side), np.intp, len(side)))
        flat = pd.Series(list(chain.from_iterable(side)), dtype=object).isin(ids).to_numpy()
        hits[owner[flat]] = True
    return hits


@dataclass(frozen=True)
class UnscoredTrials:
    """Trials left unscored (NaN): using a recording without a vector, or with a bad one."""

    without_vector: int = 0
    bad_vector: int = 0
    bad: tuple[BadVector, ...] = ()

    @classmethod
    def of(cls, trials: Trials, valid: np.ndarray, bad: list[BadVector]) -> UnscoredTrials:
        with_bad = int((_uses(trials, {b.item_id for b in bad}) & ~valid).sum()) if bad else 0
        return cls(int((~valid).sum()) - with_bad, with_bad, tuple(bad))

    def __len__(self) -> int:
        return self.without_vector + self.bad_vector

    def summary(self) -> str:
        """`N not scored: ...` (empty when all trials were scored)."""
        reasons = []
        if self.without_vector:
            reasons.append(f"{self.without_vector} use a recording without a vector")
        if self.bad_vector:
            reasons.append(f"{self.bad_vector} use a recording with {describe_bad(list(self.bad))}")
        return f"{len(self)} not scored ({'; '.join(reasons)})" if reasons else ""


def find_trial(trials: Trials, spec: str) -> int:
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


def _write_scores(
    trials: Trials,
    scores: np.ndarray,
    raw: np.ndarray | None,
    path: Path,
    conditions: TrialConditions | None = None,
    same: SameRecordingTrials | None = None,
) -> None:
    """scores.csv: the trials plus `scores` (calibrated LLRs if calibrated), `raw_score`,
    `same_recording`, `in_conditions` and `conditions_reason`."""
    frame = trials.frame.copy()
    frame["scores"] = scores
    if raw is not None:
        frame["raw_score"] = raw
    if same is not None:
        frame[COLUMN] = same.flags
    if conditions is not None:
        frame["in_conditions"] = conditions.in_conditions
        frame["conditions_reason"] = conditions.reasons
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=trials.sep, index=False)


def _plot_trials(
    scorer: LRScorer,
    vectors: np.ndarray,
    cells: TrialCells,
    valid: np.ndarray,
    trials: Trials,
    specs: Sequence[str],
    save_dir: Path,
    k: int,
) -> list[Path]:
    """One bar chart per requested trial (explanation_trialN.png)."""
    position = np.cumsum(valid) - 1  # row among the scored trials
    paths = []
    for spec in specs:
        row = find_trial(trials, spec)
        if not valid[row]:
            raise DataError(f"trial {row + 1}: a recording has no valid vector, nothing to explain")
        _, terms, enroll, test = next(explain_trials(scorer, vectors, cells.one(position[row])))
        path = save_dir / f"explanation_trial{row + 1}.png"
        title = (
            f"trial {row + 1}: {','.join(trials.enrollment[row])} vs {','.join(trials.test[row])}"
        )
        plot_explanation(terms[0], enroll[0, :, 0], test[0, :, 0], path, k=k, title=title)
        paths.append(path)
    return paths


def check_trial_conditions(
    calibrated: CalibrationChoice,
    dataset: AudioDataset,
    trials: Trials,
    valid: np.ndarray,
    durations: dict[str, float] | None,
) -> TrialConditions:
    """Whether each trial of calibrated scores lies in the conditions its calibration was
    fitted in (see `balr.conditions`): out, with the reason, when the calibration has no
    conditions description, or when a recording has no valid vector."""
    description = calibrated.conditions
    if description is None:
        return TrialConditions.unchecked(len(trials), NO_DESCRIPTION)
    present, vectors = dataset.stack_vectors(
        description.vector_kind_, [dataset.index_of(i) for i in trials.unique_ids()], bad=[]
    )
    names = [dataset.items[i].id for i in present]
    row_of = {name: row for row, name in enumerate(names)}
    checkable = valid & _all_in(trials.enrollment, row_of) & _all_in(trials.test, row_of)
    result = TrialConditions.unchecked(len(trials), "not scored: a recording has no valid vector")
    for t in np.flatnonzero(valid & ~checkable):
        result.reasons[t] = f"a recording has no {description.vector_kind_} vector to check"
    keep = np.flatnonzero(checkable)
    if len(keep):  # then `names` holds every recording of these trials
        speech = side_seconds([[name] for name in names], durations)
        checked = trial_conditions(
            description.check_recordings(vectors, speech),
            [[row_of[i] for i in trials.enrollment[t]] for t in keep],
            [[row_of[i] for i in trials.test[t]] for t in keep],
            names,
        )
        result.in_conditions[keep] = checked.in_conditions
        for t, reason in zip(keep, checked.reasons, strict=True):
            result.reasons[t] = reason
    return result


def _all_in(cells: list[list[str]], rows: dict[str, int]) -> np.ndarray:
    return np.array([all(i in rows for i in cell) for cell in cells], bool)


def _conditions_metrics(
    conditions: TrialConditions, scores: np.ndarray, labels: np.ndarray
) -> dict:
    """metrics.json keys: trials in / out of the calibration conditions, and the EER, Cllr
    and minCllr of the labelled in-conditions trials (when they have both classes)."""
    counts = {f"n_{key}": value for key, value in conditions.counts().items()}
    inside = conditions.in_conditions & (labels >= 0) & np.isfinite(scores)
    if 0 < labels[inside].sum() < inside.sum():
        metrics = compute_metrics(scores[inside], labels[inside])
        counts["in_conditions_metrics"] = {
            key: metrics[key]
            for key in ("eer", "cllr", "min_cllr", "n_target", "n_nontarget")
            if key in metrics
        }
    return counts


@dataclass(frozen=True)
class ScoredTrials:
    n_trials: int
    scorer: str
    calibration: str  # the calibration applied, or why none
    evaluation: TrialMetrics
    save_dir: Path
    unscored: UnscoredTrials = UnscoredTrials()
    conditions: TrialConditions | None = None
    population: Population | None = None  # the relevant population adapted to
    same_recording: SameRecordingTrials | None = None

    def summary(self) -> str:
        scored = f"{self.n_trials} trials scored"
        if len(self.unscored):
            scored = (
                f"{self.n_trials - len(self.unscored)} of {self.n_trials} trials scored, "
                f"{self.unscored.summary()},"
            )
        same = self.same_recording.summary() if self.same_recording else ""
        return (
            f"{scored} with {self.scorer}{self._population_summary()}, calibration "
            f"{self.calibration}; {self.evaluation.summary()}{self._conditions_summary()}{same}; "
            f"outputs in {self.save_dir}"
        )

    def _population_summary(self) -> str:
        return f" adapted to the {self.population.describe()}" if self.population else ""

    def _conditions_summary(self) -> str:
        if self.conditions is None or self.conditions.in_conditions.all():
            return ""
        out = self.conditions.counts()["out_of_conditions"]
        if len(set(self.conditions.reasons)) == 1:  # one reason for all, e.g. no description
            reason = self.conditions.reasons[0]
            return f"; {out} trials out of the calibration conditions ({reason})"
        return f"; {out} of {self.n_trials} trials out of the calibration conditions"


def score_trials_file(
    test_data: Path,
    trials_path: Path,
    sep: str = "\t",
    save_dir: Path | None = None,
    vectors_dir: Path | None = None,
    explain: int = 0,
    explain_plots: Sequence[str] = (),
    calibration: Path | None = None,
    no_calibration: bool = False,
    overrides: Sequence[str] = (),
    speech_durations: Path | None = None,
    exist_ok: bool = False,
    reading: DatasetReading | None = None,
    population: Path | None = None,
    keep_same_recording: bool = False,
) -> ScoredTrials:
    """Score a trials list: scores.csv, metrics.json and plots (when both target and
    non-target trials have known speakers), explanations.csv with the `explain` attributes
    pushing each score most each way, and one bar chart per trial of `explain_plots` (a
    trial number, 1 = first, or `ENROLLMENT::TEST` ids). Scorer and calibration as chosen by
    `balr.scoring.selection`; outputs in `save_dir` (default `runs/score`; an existing one
    becomes `runs/score2`, `runs/score3`, ... unless `exist_ok`: `balr.fileio.run_dir`).
    Speech durations (for `qmf` calibration and the conditions check) come from
    `speech_durations` or the vectors' folder (`dataset_speech_durations`); each trial is
    checked against the calibration's conditions (`check_trial_conditions`). With a
    `population` dataset the beta scorer is adapted to it (`balr.population`). Trials
    comparing a recording with itself are flagged and left out of the metrics unless
    `keep_same_recording` (`balr.scoring.same_recording`)."""
    if explain < 0:
        raise ConfigError(
            f"--explain {explain}: give the number of attributes to write (0 or more)"
        )
    overrides = list(overrides)
    cfg = score_config(overrides)
    choice = select_configured_scorer(cfg, overrides)
    scorer = choice.scorer
    calibrated = select_calibration(choice, calibration, no_calibration)
    if (explain or explain_plots) and not isinstance(scorer, LRScorer):
        raise ConfigError(f"scorer '{scorer.name}' is not a likelihood ratio: nothing to explain")
    dataset = _open_dataset(test_data, vectors_dir, reading)
    trials = load_trials(trials_path, sep=sep, known_ids=set(dataset.ids))
    labels = trials.labels(dataset)
    audio_of = {item.id: item.audio for item in dataset.items}
    same = find_same_recording_trials(trials.enrollment, trials.test, audio_of, keep_same_recording)
    pop = None
    if population is not None:
        pop = case_population(population, dataset, trials, vectors_dir, reading)
        scorer = adapt_to_population(scorer, pop)[0]
    bad: list[BadVector] = []
    vectors, cells, valid = trial_vectors(dataset, trials, scorer.vector_kind, bad)
    if scorer.vector_kind == "ba" and len(vectors):
        check_attribute_count(cfg, vectors.shape[1], test_data)
    scores = np.full(len(trials), np.nan)
    scores[valid] = score_trials(scorer, vectors, cells, chunk=cfg.chunk_size)
    durations = dataset_speech_durations(dataset, vectors_dir, speech_durations)
    raw, conditions = None, None  # uncalibrated scores have no calibration conditions
    calibrator = calibrated.calibrator
    if calibrator is not None:  # NaN (no vector) stays NaN
        seconds = trial_seconds(trials, durations) if calibrator.uses_durations else None
        raw, scores = scores, calibrator.transform(scores, seconds)
        conditions = check_trial_conditions(calibrated, dataset, trials, valid, durations)
    save_dir = run_dir(save_dir, SCORE_RUN_DIR, exist_ok)
    _write_scores(trials, scores, raw, save_dir / "scores.csv", conditions, same)
    extra = {"vector_kind": scorer.vector_kind} | same.metrics()
    if pop is not None:
        extra["population"] = pop.record()
    if conditions is not None:
        extra |= _conditions_metrics(conditions, scores, np.where(same.left_out(), -1, labels))
    evaluation = write_trial_metrics(
        save_dir, scores, labels, scorer.name, raw, calibrated.source, extra, same.left_out()
    )
    lists = {"dataset": test_data, "trials": trials_path}
    inputs = score_inputs(dataset, trials.unique_ids(), scorer.vector_kind, lists, speech_durations)
    models = {"scorer": scorer_file(choice.checkpoint), **calibration_files(calibrated)}
    if pop is not None:
        pop_data = _open_dataset(population, vectors_dir, reading)
        pop_files = population_files(pop_data, pop.ids, population)
    write_record(save_dir / RUN_RECORD, audit_record(inputs, models, pop_files if pop else None))
    if explain:
        keep = np.flatnonzero(valid)
        write_explanations(
            save_dir / "explanations.csv",
            scorer,
            vectors,
            cells,
            [",".join(trials.enrollment[i]) for i in keep],
            [",".join(trials.test[i]) for i in keep],
            explain,
            chunk=cfg.chunk_size,
            trial_numbers=keep + 1,
        )
    k = explain or PLOTTED_ATTRIBUTES
    _plot_trials(scorer, vectors, cells, valid, trials, explain_plots, save_dir, k)
    unscored = UnscoredTrials.of(trials, valid, bad)
    used = choice.describe()
    return ScoredTrials(
        len(trials),
        used,
        calibrated.source,
        evaluation,
        save_dir,
        unscored,
        conditions,
        pop,
        same_recording=same,
    )


def case_population(
    path: Path,
    dataset: AudioDataset,
    trials: Trials,
    vectors_dir: Path | None,
    reading: DatasetReading | None,
) -> Population:
    """The population dataset at `path` without the trials' recordings and speakers."""
    case_ids = set(trials.unique_ids())
    speakers = {dataset.items[dataset.index_of(i)].speaker for i in case_ids}
    full = read_population(_open_dataset(path, vectors_dir, reading), str(path))
    return exclude_case(full, case_ids, {s for s in speakers if s})


# ---------------------------------------------------------------------- score matrix


@dataclass(frozen=True)
class ScoreMatrix:
    size: int
    scorer: str
    path: Path  # scores.npy (ids.txt beside it)
    bad: tuple[BadVector, ...] = ()  # items left out for a bad vector
    population: Population | None = None  # the relevant population adapted to

    def summary(self) -> str:
        text = f"{self.size} x {self.size} {self.scorer} scores in {self.path}"
        if self.population is not None:
            text += f" (adapted to the {self.population.describe()})"
        return f"{text}; {describe_bad(list(self.bad))} left out" if self.bad else text


def score_matrix_file(
    data: Path,
    save_dir: Path | None = None,
    vectors_dir: Path | None = None,
    overrides: Sequence[str] = (),
    population: Path | None = None,
) -> ScoreMatrix:
    """All-vs-all raw scores of single recordings: scores.npy (float64, rows enrollment,
    memory-mapped while written) and ids.txt (the row order) in `save_dir` (default: a new
    `runs/scorer/matrixN`). With a `population` dataset (none of its recordings or speakers
    in `data`) the beta scorer is adapted to it, described in population.json."""
    overrides = list(overrides)
    cfg = score_config(overrides)
    choice = select_configured_scorer(cfg, overrides)
    scorer = choice.scorer
    dataset = _open_dataset(data, vectors_dir)
    pop = None
    if population is not None:
        full = read_population(_open_dataset(population, vectors_dir), str(population))
        pop = exclude_case(full, set(dataset.ids), {s for s in dataset.speakers if s})
        scorer = adapt_to_population(scorer, pop)[0]
    bad: list[BadVector] = []
    indices, vectors = dataset.stack_vectors(scorer.vector_kind, bad=bad)
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
    if pop is not None:
        atomic_write_json(save_dir / "population.json", pop.record())
    return ScoreMatrix(len(indices), scorer.name, target, tuple(bad), pop)


# ---------------------------------------------------------------------- score calibrate


@dataclass(frozen=True)
class FittedCalibration:
    calibrator: Calibrator
    path: Path
    cllr_before: float  # on the training trials (optimistic)
    cllr_after: float
    conditions: ConditionsDescription | None = None
    conditions_note: str = ""  # why no conditions description was fitted

    def summary(self) -> str:
        c = self.calibrator
        text = (
            f"{c.method} calibrator on {c.n_target_} target and {c.n_nontarget_} non-target "
            f"trials: Cllr {self.cllr_before:.4f} -> {self.cllr_after:.4f} on these trials; "
            f"saved to {self.path}"
        )
        if self.conditions is not None:
            low, high = self.conditions.speech_range_s_
            text += (
                f"; conditions: {self.conditions.n_recordings_} recordings, speech "
                f"{low:.1f}-{high:.1f} s, similarity >= {self.conditions.similarity_threshold_:.2f}"
            )
        elif self.conditions_note:
            text += f"; no conditions description ({self.conditions_note})"
        return text


def scored_vector_kind(scores_csv: Path) -> str:
    """The vectors the scores of a `score test` scores.csv were computed on, from the
    metrics.json beside it (`vector_kind`, or an LR scorer's name)."""
    metrics_path = scores_csv.parent / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError):
        metrics = {}
    if metrics.get("vector_kind") in ("ba", "emb"):
        return metrics["vector_kind"]
    scorer_class = SCORERS.get(metrics.get("scorer", ""))
    if scorer_class is not None and issubclass(scorer_class, LRScorer):
        return "ba"  # every LR scorer scores BA vectors (the cosine scorer either kind)
    raise ConfigError(
        f"{scores_csv}: which vectors were scored is not recorded in {metrics_path}; "
        "give --vectors ba or --vectors emb"
    )


def calibrate_scores_file(
    scores_csv: Path,
    data: Path,
    method: str = "logistic",
    out: Path | None = None,
    sep: str = "\t",
    column: str | None = None,
    bounded: bool = True,
    group_column: str | None = None,
    speech_durations: Path | None = None,
    vectors_dir: Path | None = None,
    vector_kind: str | None = None,
    describe_conditions: bool = True,
    conditions_percentile: float = DEFAULT_SIMILARITY_PERCENTILE,
) -> FittedCalibration:
    """Fit a calibrator on the labelled trials of a `score test` scores.csv (labels from the
    speakers of dataset `data`; `raw_score` preferred unless `column` is given) and save it
    (default: calibration.json beside the scores).

    `group_column`: a column of the scores.csv naming each trial's group (e.g. corpus): each
    group weighs equally. Speech durations: `speech_durations`, else the
    `speech_durations.tsv` of the vectors' folder (`vectors_dir`, else the dataset's
    folder); `qmf` needs them. With `describe_conditions` a `ConditionsDescription` of the
    calibration recordings is fitted and saved with it, on the `vector_kind` vectors (default:
    those the scores were computed on, `scored_vector_kind`); it needs the speech durations
    (without them the calibration is saved without a description, and the result says why).
    `conditions_percentile`: the share (%) of calibration recordings whose similarity to the
    others is taken as the lowest in conditions (lower: fewer warnings in domain, and fewer
    out of it; docs/scoring.md gives the measured trade-off).
    """
    if method not in METHODS:
        raise ConfigError(f"--method {method}: expected one of {', '.join(METHODS)}")
    if vector_kind not in (None, "ba", "emb"):
        raise ConfigError(f"--vectors {vector_kind}: expected ba or emb")
    dataset = AudioDataset.from_path(data, output_dir=vectors_dir)
    labelled = read_labelled_trials(scores_csv, dataset, sep, column)
    groups = _trial_groups(labelled.trials, labelled.keep, group_column, scores_csv)
    durations = dataset_speech_durations(dataset, vectors_dir, speech_durations)
    kept = labelled.trials.subset(labelled.keep)
    seconds = trial_seconds(kept, durations) if durations is not None else None
    if method == "qmf":
        _check_qmf_durations(seconds, kept, vectors_dir or dataset.root)
    description = f"{method} fitted on '{labelled.column}' of {scores_csv}"
    if group_column:
        description += f", each '{group_column}' group weighing equally"
    calibrator = make_calibrator(method, bounded, description)
    calibrator.fit(labelled.scores, labelled.labels, seconds, groups)
    out = out or scores_csv.parent / "calibration.json"
    conditions, note = None, "not asked for"
    if describe_conditions and durations is None:
        note = f"no {SPEECH_FILE} in {vectors_dir or dataset.root}"
        logger.warning("calibration saved without a conditions description: %s", note)
    elif describe_conditions:
        kind = vector_kind or scored_vector_kind(scores_csv)
        conditions = describe_recordings(
            dataset, kept.unique_ids(), durations, kind, conditions_percentile
        )
    CalibrationBundle(calibrator, conditions).save(out)
    before = cllr(labelled.scores, labelled.labels)
    after = cllr(calibrator.transform(labelled.scores, seconds), labelled.labels)
    return FittedCalibration(calibrator, out, before, after, conditions, note)


def describe_recordings(
    dataset: AudioDataset,
    ids: Sequence[str],
    durations: dict[str, float],
    kind: str,
    similarity_percentile: float = DEFAULT_SIMILARITY_PERCENTILE,
) -> ConditionsDescription:
    """The conditions description of the recordings `ids` of `dataset` (`kind` vectors)."""
    index_of = {item_id: i for i, item_id in enumerate(dataset.ids)}
    present, vectors = dataset.stack_vectors(kind, [index_of[i] for i in ids])
    items = [dataset.items[i] for i in present]
    speech = side_seconds([[item.id] for item in items], durations)
    speakers = [item.speaker for item in items]
    description = ConditionsDescription(similarity_percentile=similarity_percentile)
    return description.fit(vectors, speech, speakers, vector_kind=kind)


def _trial_groups(
    trials: Trials, keep: np.ndarray, column: str | None, path: Path
) -> np.ndarray | None:
    if not column:
        return None
    if column not in trials.frame.columns:
        raise DataError(f"{path}: no group column '{column}'")
    return trials.frame[column].astype(str).to_numpy()[keep]


def _check_qmf_durations(seconds: np.ndarray | None, trials: Trials, folder: Path) -> None:
    if seconds is None:
        raise DataError(
            f"--method qmf needs the recordings' speech durations: no {SPEECH_FILE} in "
            f"{folder} (written by `balr extract`; or give --speech-durations)"
        )
    unknown = np.flatnonzero(np.isnan(seconds).any(axis=1))
    if len(unknown):
        first = unknown[0]
        raise DataError(
            f"--method qmf: {len(unknown)} trials use a recording without a speech duration, "
            f"e.g. {','.join(trials.enrollment[first])} vs {','.join(trials.test[first])}"
        )
