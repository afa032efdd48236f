"""The evaluation files of a scored, labelled trial set, written side by side."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from balr.evaluation.metrics import compute_metrics, reference_metrics
from balr.evaluation.plots import plot_det, plot_ece, plot_pav, plot_tippett
from balr.fileio import atomic_write_json

PLOTS = {"det.png": plot_det, "tippett.png": plot_tippett, "pav.png": plot_pav, "ece.png": plot_ece}


def with_reference_keys(scores: np.ndarray, labels: np.ndarray) -> dict:
    """The reference library's metrics.json keys beside balr's own: `EER`, `EER_thres`,
    `TP`... `CLLR` at the top level where the name is free, and all of them, `threshold`,
    `precision` and `recall` included (balr's keys of those names keep balr's definitions),
    under `reference_metrics`."""
    reference = reference_metrics(scores, labels)
    free = {k: v for k, v in reference.items() if k not in ("threshold", "precision", "recall")}
    return {**free, "reference_metrics": reference}


def write_evaluation(
    save_dir: str | os.PathLike,
    metrics: dict,
    scores: np.ndarray,
    labels: np.ndarray,
    title: str = "",
) -> list[str]:
    """metrics.json (strict JSON; balr's metrics plus the reference library's keys) and DET,
    Tippett, PAV and ECE plots (PAV drawn by lir, ECE in its layout); returns the file names
    written."""
    save_dir = Path(save_dir)
    atomic_write_json(save_dir / "metrics.json", {**metrics, **with_reference_keys(scores, labels)})
    for name, plot in PLOTS.items():
        heading = f"{name[:-4].upper() if len(name) == 7 else name[:-4].title()}"
        plot(scores, labels, save_dir / name, title=f"{heading}: {title}" if title else heading)
    return ["metrics.json", *PLOTS]


@dataclass(frozen=True)
class TrialMetrics:
    """The metrics of scored trials (None when they lack targets or non-targets) and the
    numbers of target and non-target trials with a known speaker and a finite score."""

    metrics: dict | None
    n_target: int
    n_nontarget: int

    def summary(self) -> str:
        """One line: EER, Cllr (and the raw scores' Cllr), minCllr; or why there are none."""
        if self.metrics is None:
            return (
                f"no metrics: {self.n_target} target and {self.n_nontarget} non-target trials "
                "with known speakers (both are needed)"
            )
        text = f"EER {self.metrics['eer']:.4f}, Cllr {self.metrics['cllr']:.4f}"
        if "raw_cllr" in self.metrics:
            text += f" (raw {self.metrics['raw_cllr']:.4f})"
        return f"{text}, minCllr {self.metrics['min_cllr']:.4f}"


def write_trial_metrics(
    save_dir: str | os.PathLike,
    scores: np.ndarray,
    labels: np.ndarray,
    name: str,
    raw: np.ndarray | None = None,
    calibration: str = "none",
    extra: dict | None = None,
    left_out: np.ndarray | None = None,
) -> TrialMetrics:
    """metrics.json and DET, Tippett, PAV, ECE plots of scored trials with labels 1 / 0 / -1
    (unknown speaker), on the labelled trials with a finite score (calibrated LLRs when
    calibrated; the `raw` scores' Cllr and minCllr are kept for comparison). Nothing is
    written without both target and non-target trials. `extra` keys are added as they are.
    The trials of the `left_out` mask (e.g. same-recording trials) are not evaluated."""
    keep = (labels >= 0) & np.isfinite(scores)
    if left_out is not None:
        keep &= ~left_out
    n_target, n_nontarget = int((labels[keep] == 1).sum()), int((labels[keep] == 0).sum())
    if not n_target or not n_nontarget:
        return TrialMetrics(None, n_target, n_nontarget)
    metrics = compute_metrics(scores[keep], labels[keep])
    metrics.update(
        scorer=name,
        calibration=calibration,
        n_trials=len(scores),
        n_scored=int(np.isfinite(scores).sum()),
        n_unlabelled=int((labels < 0).sum()),
    )
    if raw is not None:
        raw_metrics = compute_metrics(raw[keep], labels[keep])
        metrics.update(raw_cllr=raw_metrics["cllr"], raw_min_cllr=raw_metrics["min_cllr"])
    metrics.update(extra or {})
    write_evaluation(save_dir, metrics, scores[keep], labels[keep], title=name)
    return TrialMetrics(metrics, n_target, n_nontarget)
