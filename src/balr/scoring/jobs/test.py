"""`balr score test`: score a trials list (scores, calibration, conditions check, metrics,
explanations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr import defaults
from balr.audit import (
    RUN_RECORD,
    audit_record,
    calibration_files,
    population_files,
    score_inputs,
    scorer_file,
    write_record,
)
from balr.conditions import TrialConditions
from balr.conditions.population import PopulationConditions
from balr.data import Trials, load_trials
from balr.data.channel_profiles import ChannelProfileLog
from balr.data.speech import load_speech_durations
from balr.data.trials import labels_of_sides
from balr.data.validation import BadVector
from balr.errors import ConfigError, DataError
from balr.evaluation.metrics import compute_metrics
from balr.evaluation.outputs import TrialMetrics, write_trial_metrics
from balr.fileio import atomic_path, run_dir
from balr.population_decision import ADAPT_MODES
from balr.scoring import LRScorer
from balr.scoring.config import check_attribute_count
from balr.scoring.explain import write_explanations
from balr.scoring.finite import check_finite_scores
from balr.scoring.jobs.checks import calibrate_and_check
from balr.scoring.jobs.common import ScoringRun
from balr.scoring.jobs.population import (
    population_folder,
    population_scorer,
    trial_populations,
    warn_population_mismatch,
)
from balr.scoring.plots import plot_explanation
from balr.scoring.population_cosine import TrialwiseCentredCosine
from balr.scoring.population_trials import TrialPopulations, TrialwiseBeta
from balr.scoring.same_recording import COLUMN, SameRecordingTrials, find_same_recording_trials
from balr.scoring.selection import (
    select_calibration,
    select_configured_scorer,
)
from balr.scoring.trials import (
    TrialCells,
    UnscoredTrials,
    explain_trials,
    find_trial,
    score_trials,
    trial_vectors,
)

SCORE_RUN_DIR = "runs/score"  # the reference's default folder (`balr.fileio.run_dir`)
#: attributes drawn each way in an explanation plot when no `explain` K is given
PLOTTED_ATTRIBUTES = 10
#: the metrics.json key recording which vectors were scored (`ba` or `emb`)
SCORED_VECTORS_KEY = "vector_kind"
#: the run.json key describing the population (source, sizes, sha256, per-trial sizes)
POPULATION_RECORD = "population_record"


@dataclass(frozen=True)
class TrialScoring(ScoringRun):
    """`score test`'s options besides the scoring run: the trials' column separator, the
    `explain` attributes written per trial, the trials plotted (`explain_plots`: a trial
    number, 1 = first, or `ENROLLMENT::TEST` ids), the calibration (`calibration`, else as
    `balr.scoring.selection` chooses; none with `no_calibration`) and the speech durations
    file (default: the one in the vectors' folder); with a relevant `population` dataset the
    beta scorer adapts to it where it shows that the calibration does not hold there
    (`population_adapt` `auto`; `always`: whatever it shows; `balr.population.
    decide_adaptation`); trials comparing a recording with itself are
    flagged and left out of the metrics unless `keep_same_recording`
    (`balr.scoring.same_recording`; `same_recording_by_id` compares ids only, decoding no
    audio)."""

    sep: str = "\t"
    explain: int = 0
    explain_plots: tuple[str, ...] = ()
    calibration: Path | None = None
    no_calibration: bool = False
    speech_durations: Path | None = None
    population: Path | None = None
    population_adapt: str = "auto"
    keep_same_recording: bool = False
    same_recording_by_id: bool = False

    def check(self) -> None:
        """ConfigError on options that cannot work."""
        if self.explain < 0:
            raise ConfigError(
                f"--explain {self.explain}: give the number of attributes to write (0 or more)"
            )
        if self.population_adapt not in ADAPT_MODES:
            raise ConfigError(
                f"--population-adapt {self.population_adapt}: choose one of "
                f"{', '.join(ADAPT_MODES)}"
            )


@dataclass(frozen=True)
class ScoredTrials:
    n_trials: int
    scorer: str
    calibration: str  # the calibration applied, or why none
    evaluation: TrialMetrics
    save_dir: Path
    unscored: UnscoredTrials = UnscoredTrials()
    conditions: TrialConditions | None = None
    population: TrialPopulations | None = None  # the relevant population adapted to
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
        return f" {self.population.summary()}" if self.population else ""

    def _conditions_summary(self) -> str:
        if self.conditions is None or self.conditions.in_conditions.all():
            return ""
        out = self.conditions.counts()["out_of_conditions"]
        whose = "the calibration conditions"
        if self.population is not None and isinstance(
            self.population.conditions, PopulationConditions
        ):
            whose = "the population's and the calibration's conditions"
        if len(set(self.conditions.reasons)) == 1:  # one reason for all, e.g. no description
            reason = self.conditions.reasons[0]
            return f"; {out} trials out of {whose} ({reason})"
        return f"; {out} of {self.n_trials} trials out of {whose}"


def score_trials_file(
    test_data: Path, trials_path: Path, options: TrialScoring | None = None
) -> ScoredTrials:
    """Score a trials list: scores.csv, metrics.json and plots (when both target and
    non-target trials have known speakers), explanations.csv with the `explain` attributes
    pushing each score most each way, and one bar chart per trial of `explain_plots`.
    Outputs in `options.save_dir` (default `runs/score`). Speech durations (for `qmf`
    calibration and the conditions check) come from `speech_durations` or the vectors'
    folder; each trial is checked against the calibration's conditions and its recordings'
    channels (`check_trial_conditions`, `trial_channel_check` of `balr.conditions.jobs`)."""
    options = options or TrialScoring()
    options.check()
    settings = options.score_settings()
    choice = select_configured_scorer(settings)
    scorer = choice.scorer
    calibrated = select_calibration(choice, options.calibration, options.no_calibration)
    if (options.explain or options.explain_plots) and not isinstance(scorer, LRScorer):
        raise ConfigError(f"scorer '{scorer.name}' is not a likelihood ratio: nothing to explain")
    dataset = options.open_dataset(test_data)
    trials = load_trials(trials_path, sep=options.sep, known_ids=set(dataset.ids))
    sides = trials.side_speakers(dict(zip(dataset.ids, dataset.speakers, strict=True)))
    labels = labels_of_sides(*sides)
    audio_of = {} if options.same_recording_by_id else {i.id: i.audio for i in dataset.items}
    keep_same = options.keep_same_recording
    same = find_same_recording_trials(trials.enrollment, trials.test, audio_of, keep_same)
    pop = None
    if options.population is not None:
        pop = trial_populations(options.population, dataset, trials, options, scorer)
    warn_population_mismatch(calibrated, pop)
    bad: list[BadVector] = []
    vectors, cells, valid = trial_vectors(dataset, trials, scorer.vector_kind, bad)
    if scorer.vector_kind == "ba" and len(vectors):
        check_attribute_count(settings.config, vectors.shape[1], test_data)
    if pop is not None:
        scorer, pop, calibrated = population_scorer(
            options, options.population_adapt, scorer, calibrated, pop, trials, valid
        )
    chunk = settings.config.chunk_size
    scores = np.full(len(trials), np.nan)
    scores[valid] = _score_valid(scorer, vectors, cells, chunk)
    check_finite_scores(scores, valid, trials, scorer.name, choice.checkpoint)
    folder = options.vectors_dir or dataset.root
    durations = load_speech_durations(options.speech_durations, folder)
    raw, scores, conditions, checks = calibrate_and_check(
        calibrated, scores, dataset, trials, sides, valid, same.flags, durations, folder, pop
    )
    save_dir = run_dir(options.save_dir, SCORE_RUN_DIR, options.exist_ok)
    _write_scores(trials, scores, raw, save_dir / "scores.csv", conditions, same, pop)
    scored = _Scored(scorer.name, scorer.vector_kind, scores, raw, labels, calibrated.source)
    evaluation = _write_metrics(save_dir, scored, conditions, same, pop, checks)
    lists = {"dataset": test_data, "trials": trials_path}
    inputs = score_inputs(dataset, trials.unique_ids(), scorer.vector_kind, lists,
                          options.speech_durations)  # fmt: skip
    models = {"scorer": scorer_file(choice.checkpoint), **calibration_files(calibrated)}
    _write_run_record(save_dir, options, inputs, models, pop, checks, folder)
    _explain(scorer, vectors, cells, valid, trials, options, chunk, save_dir)
    unscored, used = UnscoredTrials.of(trials, valid, bad), choice.describe()
    return ScoredTrials(
        len(trials), used, calibrated.source, evaluation, save_dir, unscored, conditions, pop, same
    )


def _score_valid(scorer, vectors: np.ndarray, cells: TrialCells, chunk: int) -> np.ndarray:
    if isinstance(scorer, TrialwiseBeta | TrialwiseCentredCosine):
        return scorer.score(vectors, cells, chunk)
    return score_trials(scorer, vectors, cells, chunk=chunk)


def _write_run_record(
    save_dir: Path,
    options: TrialScoring,
    inputs: dict,
    models: dict,
    pop: TrialPopulations | None,
    checks: dict,
    folder: Path,
) -> None:
    """The audit run record (`balr.audit`) of a `score test` run: the files it read
    (`inputs`: `score_inputs`, and where the channel check or the population's conditions
    check ran (`checks`) the channel profiles of `folder` and the population's), its models
    (with the channel reference, whose scale both use, where one ran) and
    population (its files, and as `population_record` what metrics.json says of it)."""
    by_population = (checks.get("population_conditions") or {}).get("applied", False)
    if checks.get("channel_check") is not None or by_population:
        models = models | {"channel reference": [defaults.CHANNEL_REFERENCE]}
        inputs = inputs | {"channel profiles": ChannelProfileLog.files(folder)}
    if by_population:
        pop_profiles = ChannelProfileLog.files(population_folder(options))
        inputs = inputs | {"population channel profiles": pop_profiles}
    pop_files = None
    if pop is not None:
        pop_data = options.open_dataset(options.population)
        pop_files = population_files(pop_data, pop.population.ids, options.population)
    record = audit_record(inputs, models, pop_files)
    if pop is not None:
        record[POPULATION_RECORD] = pop.record()
    write_record(save_dir / RUN_RECORD, record)


def scored_vector_kind(scores_csv: Path) -> str:
    """The vectors (`ba` or `emb`) the scores of a `score test` scores.csv were computed on,
    as `score_trials_file` recorded them in the metrics.json beside it."""
    metrics_path = scores_csv.parent / "metrics.json"
    try:
        kind = json.loads(metrics_path.read_text()).get(SCORED_VECTORS_KEY)
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind not in ("ba", "emb"):
        raise ConfigError(
            f"{scores_csv}: which vectors were scored is not recorded in {metrics_path}; "
            "give --vectors ba or --vectors emb"
        )
    return kind


@dataclass(frozen=True)
class _Scored:
    """The scores of a run as its metrics need them."""

    scorer: str
    vector_kind: str
    scores: np.ndarray
    raw: np.ndarray | None
    labels: np.ndarray
    calibration: str


def _write_metrics(
    save_dir: Path,
    scored: _Scored,
    conditions: TrialConditions | None,
    same: SameRecordingTrials,
    pop: TrialPopulations | None,
    checks: dict | None = None,
) -> TrialMetrics:
    """metrics.json and plots, recording which vectors were scored (`SCORED_VECTORS_KEY`),
    the same-recording trials (left out of the metrics unless kept), the population, the
    dataset's bound and channel checks (`checks`) and the conditions counts."""
    extra = {SCORED_VECTORS_KEY: scored.vector_kind} | same.metrics() | (checks or {})
    if pop is not None:
        extra["population"] = pop.record()
    if conditions is not None:
        labels = np.where(same.left_out(), -1, scored.labels)
        extra |= _conditions_metrics(conditions, scored.scores, labels)
    return write_trial_metrics(
        save_dir,
        scored.scores,
        scored.labels,
        scored.scorer,
        scored.raw,
        scored.calibration,
        extra,
        same.left_out(),
    )


def _write_scores(
    trials: Trials,
    scores: np.ndarray,
    raw: np.ndarray | None,
    path: Path,
    conditions: TrialConditions | None = None,
    same: SameRecordingTrials | None = None,
    pop: TrialPopulations | None = None,
) -> None:
    """scores.csv: the trials plus `scores` (calibrated LLRs if calibrated), `raw_score`,
    `same_recording`, `in_conditions` and `conditions_reason`, and with a population each
    trial's `population_recordings` / `population_speakers` (its own speakers left out)."""
    frame = trials.frame.copy()
    frame["scores"] = scores
    if raw is not None:
        frame["raw_score"] = raw
    if same is not None:
        frame[COLUMN] = same.flags
    if conditions is not None:
        frame["in_conditions"] = conditions.in_conditions
        frame["conditions_reason"] = conditions.reasons_and_notes()
    if pop is not None:
        recordings, speakers = pop.trial_sizes()
        frame["population_recordings"] = recordings
        if speakers is not None:
            frame["population_speakers"] = speakers
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=trials.sep, index=False)


def _explain(
    scorer: LRScorer | TrialwiseBeta,
    vectors: np.ndarray,
    cells: TrialCells,
    valid: np.ndarray,
    trials: Trials,
    options: TrialScoring,
    chunk: int,
    save_dir: Path,
) -> None:
    """explanations.csv (with `options.explain`) and the bar charts of `explain_plots`."""
    if options.explain:
        _write_explanations(scorer, vectors, cells, valid, trials, options.explain, chunk, save_dir)
    k = options.explain or PLOTTED_ATTRIBUTES
    _plot_trials(scorer, vectors, cells, valid, trials, options.explain_plots, save_dir, k)


def _write_explanations(
    scorer: LRScorer | TrialwiseBeta,
    vectors: np.ndarray,
    cells: TrialCells,
    valid: np.ndarray,
    trials: Trials,
    k: int,
    chunk: int,
    save_dir: Path,
) -> None:
    """explanations.csv: the `k` attributes pushing each scored trial's score most each way
    (with a population: each trial's own alpha)."""
    keep = np.flatnonzero(valid)
    trialwise = isinstance(scorer, TrialwiseBeta)
    write_explanations(
        save_dir / "explanations.csv",
        scorer,
        vectors,
        cells,
        [",".join(trials.enrollment[i]) for i in keep],
        [",".join(trials.test[i]) for i in keep],
        k,
        chunk=chunk,
        trial_numbers=keep + 1,
        explained=scorer.explain(vectors, cells, chunk) if trialwise else None,
    )


def _plot_trials(
    scorer: LRScorer | TrialwiseBeta,
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
        one = cells.one(position[row])
        if isinstance(scorer, TrialwiseBeta):
            _, terms, enroll, test, _ = next(scorer.one(position[row]).explain(vectors, one))
        else:
            _, terms, enroll, test = next(explain_trials(scorer, vectors, one))
        path = save_dir / f"explanation_trial{row + 1}.png"
        title = (
            f"trial {row + 1}: {','.join(trials.enrollment[row])} vs {','.join(trials.test[row])}"
        )
        plot_explanation(terms[0], enroll[0, :, 0], test[0, :, 0], path, k=k, title=title)
        paths.append(path)
    return paths


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
