"""The evaluation files of a scored, labelled trial set, written side by side."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from balr.evaluation.plots import plot_det, plot_ece, plot_pav, plot_tippett
from balr.fileio import atomic_write_json

PLOTS = {"det.png": plot_det, "tippett.png": plot_tippett, "pav.png": plot_pav, "ece.png": plot_ece}


def write_evaluation(
    save_dir: str | os.PathLike,
    metrics: dict,
    scores: np.ndarray,
    labels: np.ndarray,
    title: str = "",
) -> list[str]:
    """metrics.json (strict JSON) plus DET, Tippett, PAV and ECE plots (PAV and ECE drawn by
    lir); returns the file names written."""
    save_dir = Path(save_dir)
    atomic_write_json(save_dir / "metrics.json", metrics)
    for name, plot in PLOTS.items():
        heading = f"{name[:-4].upper() if len(name) == 7 else name[:-4].title()}"
        plot(scores, labels, save_dir / name, title=f"{heading}: {title}" if title else heading)
    return ["metrics.json", *PLOTS]
