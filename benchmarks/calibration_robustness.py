"""Robustness of the shipped calibration: held-out corpora, leave-one-corpus-out, warnings.

Reuses the work dir of `bash recipes/default_models.sh` (its speaker splits, embeddings,
binary attributes, speech durations and raw scores: nothing is re-extracted). Two systems:
`beta` (shipped BAE + beta scorer) and `cosine_emb` (cosine of GE2E embeddings). Folds:

- `shipped`: the shipped calibrators (fitted on the `cal` parts of LibriSpeech,
  speechocean762 and Common Voice) on every corpus's held-out `test` part;
- `without X` (leave-one-corpus-out): the calibrator (same method, corpus-balanced) and its
  conditions description refitted on the `cal` trials of the other two corpora, and the
  beta scorer on their `ref` speakers only (`--shipped-scorer` keeps the shipped one); the
  BAE and embeddings stay the shipped ones (trained on the `enc` speakers of all three
  corpora: other speakers, but X's recording conditions), so X is held out of the
  calibration and the scorer, not of the encoder.

Per fold and test corpus: EER, Cllr, minCllr, share of different-speaker trials with
LR > 100 and of same-speaker trials with LR < 1/100, the share of trials the
out-of-conditions check flags, and the share of those misleading LRs (either kind) that it
flags (`misleading_flagged`: the warning is worth most where the LR misleads). When the work
dir's BAE and beta scorer are not the installed defaults (a `--no-install` recipe run), the
`shipped` fold uses the work dir's own calibrations and says so. `--similarity-percentile P`
refits every fold's conditions description (the shipped fold's too) with that percentile.
Targets (issue 13): Cllr < 0.3 where the corpus is covered by the calibration, never > 1.0;
different-speaker LR > 100 for < 1 % of trials; warning on >= 90 % of trials of a corpus
the calibration never saw and <= 10 % of covered ones.

The `shared channel` fold (issue 18.5) adds each corpus's held-out speakers through one
shared telephone or hall channel, as `benchmarks/population_robustness.py` scored them with
the shipped chain and no population (its cached work dir, `--channels-dir`), as conditions
no calibration saw; `--channels-only` runs that fold alone (no recipe work dir needed).

    python benchmarks/calibration_robustness.py [--work-dir runs/default_models]
        [--shipped-scorer] [--similarity-percentile P] [--channels-dir DIR]
        [--channels-only] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from balr import defaults  # noqa: E402
from balr.calibration import Calibrator, make_calibrator  # noqa: E402
from balr.conditions import DEFAULT_SIMILARITY_PERCENTILE, ConditionsDescription  # noqa: E402
from balr.data import AudioDataset  # noqa: E402
from balr.data.speech import SPEECH_FILE, read_speech_durations  # noqa: E402
from balr.evaluation.metrics import (  # noqa: E402
    cllr,
    eer,
    min_cllr,
    misleading_shares,
    strongly_misleading,
)
from balr.scoring import make_scorer  # noqa: E402
from balr.scoring.pairs import BitPairs, as_bits  # noqa: E402
from balr.scoring.statistics import speaker_statistics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("librispeech", "speechocean", "commonvoice", "voxceleb")
FITTED = CORPORA[:3]
SYSTEMS = {"beta": defaults.CALIBRATION, "cosine_emb": defaults.COSINE_CALIBRATION}
TARGETS = {
    "cllr_covered": 0.3,
    "cllr_max": 1.0,
    "nontarget_lr_above_100": 0.01,
    "warning_out_of_domain": 0.9,
    "warning_in_domain": 0.1,
}


class WorkDir:
    """The recipe's outputs: items with corpus/part, durations, raw scores per trial list."""

    def __init__(self, work: Path):
        self.work = work
        self.items = pd.read_csv(work / "items.csv", dtype=str).set_index("id", drop=False)
        speech = read_speech_durations(work / SPEECH_FILE)
        self.items = self.items[self.items["id"].isin(speech)]
        self.speech = pd.Series(speech)

    def raw_scores(self, folder: str) -> pd.DataFrame:
        """A recipe `scores.csv` with `raw` (uncalibrated score), `label`, `group` and the
        two sides' net speech seconds."""
        frame = pd.read_csv(
            self.work / folder / "scores.csv", sep="\t", dtype={"enrollment": str, "test": str}
        )
        raw = frame["raw_score"] if "raw_score" in frame else frame["scores"]
        speaker = self.items["speaker"]
        return frame.assign(
            raw=raw.to_numpy(np.float64),
            label=(frame["enrollment"].map(speaker) == frame["test"].map(speaker)).astype(int),
            group=frame["enrollment"].map(self.items["corpus"]),
            speech_e=frame["enrollment"].map(self.speech).to_numpy(np.float64),
            speech_t=frame["test"].map(self.speech).to_numpy(np.float64),
        )


def durations(frame: pd.DataFrame) -> np.ndarray:
    return frame[["speech_e", "speech_t"]].to_numpy(np.float64)


def figures(llrs: np.ndarray, labels: np.ndarray, flagged: np.ndarray) -> dict:
    """The figures of one fold and test corpus; `flagged`: the trials the warning flags."""
    misleading = strongly_misleading(llrs, labels)
    return {
        "eer": eer(llrs, labels)[0],
        "cllr": cllr(llrs, labels),
        "min_cllr": min_cllr(llrs, labels),
        **misleading_shares(llrs, labels),
        "n_target": int(np.count_nonzero(labels == 1)),
        "n_nontarget": int(np.count_nonzero(labels == 0)),
        "warning_rate": float(np.mean(flagged)),
        "n_misleading": int(np.count_nonzero(misleading)),
        "misleading_flagged": float(np.mean(flagged[misleading])) if misleading.any() else None,
    }


def fit_calibrator(template: Calibrator, cal: pd.DataFrame) -> Calibrator:
    """A calibrator of `template`'s method refitted on `cal` (corpus-balanced)."""
    calibrator = make_calibrator(template.method, template.bounded, f"{template.method}, LOCO")
    return calibrator.fit(
        cal["raw"].to_numpy(), cal["label"].to_numpy(), durations(cal), cal["group"].to_numpy()
    )


class Vectors:
    """Every item's embedding and BA vector (the recipe's stores), by id."""

    KINDS = {"beta": "ba", "cosine_emb": "emb"}

    def __init__(self, work: WorkDir):
        dataset = AudioDataset.from_path(work.work / "all.csv")
        self.rows: dict[str, dict[str, int]] = {}
        self.arrays: dict[str, np.ndarray] = {}
        for kind in ("emb", "ba"):
            rows, self.arrays[kind] = dataset.stack_vectors(kind)
            self.rows[kind] = {dataset.items[r].id: k for k, r in enumerate(rows)}

    def of(self, system: str, ids) -> np.ndarray:
        kind = self.KINDS[system]
        return self.arrays[kind][[self.rows[kind][i] for i in ids]]


def trial_recordings(frame: pd.DataFrame) -> np.ndarray:
    """The ids of the recordings the trials of `frame` use, each once."""
    return pd.unique(pd.concat([frame["enrollment"], frame["test"]]))


def fit_conditions(
    work: WorkDir, vectors: Vectors, system: str, cal: pd.DataFrame, percentile: float
) -> ConditionsDescription:
    """The conditions description of the recordings of the calibration trials `cal` (as
    the recipe's calibrate does, `--group-column group`, with
    `similarity_percentile=percentile`)."""
    items = work.items.loc[list(trial_recordings(cal))]
    return ConditionsDescription(similarity_percentile=percentile).fit(
        vectors.of(system, items["id"]),
        work.speech.loc[items["id"]].to_numpy(),
        list(items["speaker"]),
        vector_kind=Vectors.KINDS[system],
        groups=list(items["corpus"]),  # the threshold balanced over corpora, as the recipe's
    )


def out_of_conditions(
    conditions: ConditionsDescription, frame: pd.DataFrame, work: WorkDir, vectors, system
) -> np.ndarray:
    """Whether each trial has a recording outside the description (each recording checked
    once)."""
    ids = trial_recordings(frame)
    checked = conditions.check_recordings(vectors.of(system, ids), work.speech.loc[ids].to_numpy())
    inside = pd.Series(checked.in_conditions, index=ids)
    both = frame["enrollment"].map(inside).to_numpy() & frame["test"].map(inside).to_numpy()
    return ~both


def refit_beta_scores(work: WorkDir, vectors: Vectors, without: str, frames: dict) -> dict:
    """Raw beta scores of every trial list with the beta scorer refitted on the `ref`
    speakers of the fitted corpora other than `without`."""
    bits = as_bits(vectors.arrays["ba"])
    row_of = vectors.rows["ba"]
    ref = work.items[(work.items["part"] == "ref") & (work.items["corpus"] != without)]
    ref = ref[ref["corpus"].isin(FITTED)]
    _, stats = speaker_statistics(bits[[row_of[i] for i in ref["id"]]], list(ref["speaker"]))
    pairs = BitPairs(make_scorer("beta").fit(stats).bit_table(), bits)
    return {
        name: frame.assign(
            raw=pairs.score(frame["enrollment"].map(row_of), frame["test"].map(row_of))
        )
        for name, frame in frames.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "default_models")
    parser.add_argument(
        "--shipped-scorer",
        action="store_true",
        help="LOCO folds keep the shipped beta scorer (default: refit without the corpus)",
    )
    parser.add_argument(
        "--similarity-percentile",
        type=float,
        default=None,
        help="refit every fold's conditions description (the shipped one too) with this "
        "percentile of the calibration recordings' kNN similarity (default: as shipped, 2)",
    )
    parser.add_argument(
        "--channels-dir",
        type=Path,
        default=REPO / "runs" / "population_robustness",
        help="work dir of benchmarks/population_robustness.py: its held-out speakers through "
        "shared channels are the `shared channel` fold (skipped when absent)",
    )
    parser.add_argument(
        "--channels-only", action="store_true", help="only the `shared channel` fold"
    )
    parser.add_argument("--out", default=None, help="JSON path")
    args = parser.parse_args()
    if args.channels_only:
        results = {"loco": "none (--channels-only)", "targets": TARGETS, "folds": {}}
        add_channel_fold(results, args.channels_dir)
        results["targets_met"] = targets_met(results["folds"])
        print_table(results)
        write_results("calibration_robustness", results, args.out)
        return
    started = time.perf_counter()
    work = WorkDir(args.work_dir.resolve())
    vectors = Vectors(work)
    results: dict = {
        "work_dir": str(args.work_dir),
        "loco": "calibration and conditions description refitted without the corpus"
        + ("; beta scorer and BAE as shipped" if args.shipped_scorer else ", beta scorer too"),
        "targets": TARGETS,
        "similarity_percentile": args.similarity_percentile or "as shipped",
        "folds": {},
    }
    percentile = args.similarity_percentile
    if percentile is None:
        percentile = DEFAULT_SIMILARITY_PERCENTILE
    models = work_dir_models(work.work)
    results["models"] = models
    if models != "shipped":
        print(f"note: {models}", flush=True)
    for system, shipped_path in SYSTEMS.items():
        if models != "shipped":  # the recipe's own calibrations, fitted on these scores
            shipped_path = work.work / shipped_path.name
        shipped = Calibrator.load(shipped_path)
        cal = work.raw_scores(f"cal_{system}")
        tests = {c: work.raw_scores(f"test_{c}_{system}") for c in CORPORA}
        for fold in ("shipped", *FITTED):
            fold_cal, fold_tests = cal, tests
            if fold == "shipped":
                calibrator = shipped
                conditions = ConditionsDescription.load(shipped_path)
                if args.similarity_percentile is not None:
                    conditions = fit_conditions(work, vectors, system, cal, percentile)
            else:
                if not args.shipped_scorer and system == "beta":
                    refit = refit_beta_scores(work, vectors, fold, {"cal": cal, **tests})
                    fold_cal, fold_tests = refit.pop("cal"), refit
                fold_cal = fold_cal[fold_cal["group"] != fold]
                calibrator = fit_calibrator(shipped, fold_cal)
                conditions = fit_conditions(work, vectors, system, fold_cal, percentile)
            for corpus, frame in fold_tests.items():
                llrs = calibrator.transform(frame["raw"].to_numpy(), durations(frame))
                flagged = out_of_conditions(conditions, frame, work, vectors, system)
                row = figures(llrs, frame["label"].to_numpy(), flagged)
                row["covered"] = corpus in FITTED and corpus != fold
                results["folds"].setdefault(fold, {}).setdefault(system, {})[corpus] = row
            print(f"{system} {fold}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    add_channel_fold(results, args.channels_dir)
    results["targets_met"] = targets_met(results["folds"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    print_table(results)
    write_results("calibration_robustness", results, args.out)


def add_channel_fold(results: dict, channels_dir: Path) -> None:
    """The `shared channel` fold (issue 18.5): the shipped chain as `balr score test` ran it
    without a population (the cached `scores_pop0` of benchmarks/population_robustness.py)
    on each corpus's held-out speakers as recorded (covered) and through one shared
    telephone or hall channel (conditions the calibration never saw); warned = out of
    conditions (the conditions check and the dataset's own bound check)."""
    rows = {}
    for scores_csv in sorted(channels_dir.glob("*/*/scores_pop0/scores.csv")):
        folder = scores_csv.parents[1]
        items = pd.read_csv(folder / "all.csv", dtype=str)
        speaker = dict(zip(items["id"], items["speaker"], strict=True))
        frame = pd.read_csv(scores_csv, sep="\t", dtype={"enrollment": str, "test": str})
        llrs = frame["scores"].to_numpy(np.float64)
        labels = (frame["enrollment"].map(speaker) == frame["test"].map(speaker)).to_numpy(int)
        flagged = ~frame["in_conditions"].astype(bool).to_numpy()
        scored = np.isfinite(llrs)
        row = figures(llrs[scored], labels[scored], flagged[scored])
        row["covered"] = folder.name == "orig"
        rows[f"{folder.parent.name}/{folder.name}"] = row
    if rows:
        results["folds"]["shared channel"] = {"beta": rows}
    else:
        print(f"note: no shared-channel scores under {channels_dir} (run "
              "benchmarks/population_robustness.py first): fold skipped", flush=True)  # fmt: skip


def work_dir_models(work: Path) -> str:
    """`shipped` when the work dir's BAE and beta scorer are the installed defaults (then the
    shipped calibrations apply to its scores); else a note saying the `shipped` fold uses the
    work dir's own calibrations, since the installed ones were fitted on other models' scores
    and would give misleading figures."""
    pairs = {
        work / "bae.safetensors": defaults.BAE_CHECKPOINT,
        work / "scorer_beta" / "scorer.safetensors": defaults.SCORER_CHECKPOINT,
    }
    if all(a.is_file() and a.read_bytes() == b.read_bytes() for a, b in pairs.items()):
        return "shipped"
    return (
        f"the models in {work} are not the installed defaults (a recipe run with "
        "--no-install, or other settings): the 'shipped' fold uses that work dir's own "
        "calibration.json and calibration_cosine.json"
    )


def targets_met(folds: dict) -> dict:
    """Each issue-13 target: met or not, its worst value over folds, systems and test
    corpora, and the `fold/system/corpus` cases that miss it."""
    rows = [
        (f"{fold}/{system}/{corpus}", row)
        for fold, systems in folds.items()
        for system, corpora in systems.items()
        for corpus, row in corpora.items()
    ]
    covered = [(name, r) for name, r in rows if r["covered"]]
    uncovered = [(name, r) for name, r in rows if not r["covered"]]
    checks = {  # name: (cases, value, worst is max (True) or min (False), passes)
        "cllr_covered": (covered, "cllr", True, lambda v: v < TARGETS["cllr_covered"]),
        "cllr_max": (rows, "cllr", True, lambda v: v <= TARGETS["cllr_max"]),
        "nontarget_lr_above_100": (
            rows, "nontarget_lr_above_100", True,
            lambda v: v < TARGETS["nontarget_lr_above_100"],
        ),
        "warning_in_domain": (
            covered, "warning_rate", True, lambda v: v <= TARGETS["warning_in_domain"]
        ),
        "warning_out_of_domain": (
            uncovered, "warning_rate", False, lambda v: v >= TARGETS["warning_out_of_domain"]
        ),
    }  # fmt: skip
    met = {}
    for name, (cases, key, worst_is_max, passes) in checks.items():
        values = [r[key] for _, r in cases]
        failing = [case for case, r in cases if not passes(r[key])]
        worst = max(values) if worst_is_max else min(values)
        met[name] = {"worst": worst, "met": not failing, "failing": failing}
    return met


def print_table(results: dict) -> None:
    print(f"\nLOCO folds: {results['loco']} (* = corpus not covered by the calibration)")
    header = (
        "fold       system     test          EER %   Cllr  minCllr  non>100 %  tar<1/100 %  warn %"
        "  misleading warned"
    )
    print(header)
    for fold, systems in results["folds"].items():
        for system, rows in systems.items():
            for corpus, r in rows.items():
                mark = " " if r["covered"] else "*"
                warn = f"{100 * r['warning_rate']:6.1f}"
                flagged = r["misleading_flagged"]
                share = "     -" if flagged is None else f"{100 * flagged:5.1f} %"
                warned = f"{r['n_misleading']:6d} {share}"
                print(
                    f"{fold:10s} {system:10s} {corpus:12s}{mark} {100 * r['eer']:6.2f} "
                    f"{r['cllr']:6.3f} {r['min_cllr']:7.3f} "
                    f"{100 * r['nontarget_lr_above_100']:9.2f} "
                    f"{100 * r['target_lr_below_0.01']:11.2f}  {warn}  {warned}"
                )
    print("\ntargets:")
    for name, check in results["targets_met"].items():
        verdict = "met" if check["met"] else f"NOT met by {', '.join(check['failing'])}"
        print(f"  {name}: worst {check['worst']:.3f} (target {TARGETS[name]}): {verdict}")


if __name__ == "__main__":
    main()
