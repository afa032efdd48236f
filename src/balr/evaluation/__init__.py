"""Evaluation of detection scores: metrics on arrays (no I/O); DET, Tippett, PAV, ECE plots."""

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
from balr.evaluation.outputs import write_evaluation
from balr.evaluation.plots import plot_det, plot_ece, plot_pav, plot_tippett

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
    "plot_ece",
    "plot_pav",
    "plot_tippett",
    "score_sweep",
    "write_evaluation",
]
