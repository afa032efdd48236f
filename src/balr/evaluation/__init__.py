"""Evaluation of detection scores: metrics on arrays (no I/O) and DET / Tippett plots."""

from balr.evaluation.metrics import (
    act_dcf,
    bayes_threshold,
    cllr,
    compute_metrics,
    detection_stats,
    eer,
    min_cllr,
    min_dcf,
    pav_llrs,
    score_sweep,
)
from balr.evaluation.plots import plot_det, plot_tippett

__all__ = [
    "act_dcf",
    "bayes_threshold",
    "cllr",
    "compute_metrics",
    "detection_stats",
    "eer",
    "min_cllr",
    "min_dcf",
    "pav_llrs",
    "plot_det",
    "plot_tippett",
    "score_sweep",
]
