"""The explainability view of a DoubleMHA embedding: where in time each head listens, and how
much each head counts, drawn over the spectrogram (PNG, headless, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from balr.doublemha.inference import file_alignment
from balr.doublemha.model import SpeakerClassifier
from balr.fileio import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FRAME_SHIFT_S = 0.01


def plot_attention(
    feats: np.ndarray,
    time_weights: np.ndarray,
    head_weights: np.ndarray,
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """Spectrogram `(T, F)` with the head-weighted attention over it, the `(T', H)` per-head
    attention as a heatmap, and the `(H,)` head weights as bars beside their rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    duration = feats.shape[0] * FRAME_SHIFT_S
    overall = time_weights @ head_weights
    fig, axes = plt.subplots(
        2,
        2,
        figsize=(12, 7),
        sharex="col",
        gridspec_kw={"width_ratios": [6, 1], "height_ratios": [1, 1.4]},
    )
    spec_ax, heat_ax, bar_ax = axes[0, 0], axes[1, 0], axes[1, 1]
    axes[0, 1].axis("off")
    _draw_spectrogram(spec_ax, feats, overall, duration, title)
    _draw_heads(fig, heat_ax, bar_ax, time_weights, head_weights, duration)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _draw_spectrogram(
    spec_ax: Axes, feats: np.ndarray, overall: np.ndarray, duration: float, title: str
) -> None:
    """The `(T, F)` spectrogram with the head-weighted attention `overall` over it."""
    frames = len(overall)
    centres = (np.arange(frames) + 0.5) * duration / frames
    spec_ax.imshow(
        feats.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, duration, 0, feats.shape[1]),
    )
    spec_ax.set_ylabel("mel band")
    line_ax = spec_ax.twinx()
    line_ax.plot(centres, overall, color="cyan", linewidth=1.5, label="head-weighted attention")
    line_ax.set_ylim(0, max(float(overall.max()) * 1.1, 1e-6))
    line_ax.set_ylabel("attention")
    line_ax.legend(loc="upper right", fontsize=8)
    spec_ax.set_title(title or "DoubleMHA attention")


def _draw_heads(
    fig: Figure,
    heat_ax: Axes,
    bar_ax: Axes,
    time_weights: np.ndarray,
    head_weights: np.ndarray,
    duration: float,
) -> None:
    """The `(T', H)` per-head attention as a heatmap and the `(H,)` head weights as bars."""
    heads = time_weights.shape[1]
    image = heat_ax.imshow(
        time_weights.T,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(0, duration, -0.5, heads - 0.5),
        interpolation="nearest",
    )
    heat_ax.set_xlabel("time (s)")
    heat_ax.set_ylabel("head")
    fig.colorbar(
        image,
        ax=heat_ax,
        location="bottom",
        fraction=0.05,
        pad=0.15,
        label="attention over time (per head, sums to 1)",
    )
    bar_ax.barh(np.arange(heads), head_weights, color="tab:orange")
    bar_ax.set_ylim(-0.5, heads - 0.5)
    bar_ax.set_xlabel("head weight")
    bar_ax.yaxis.set_visible(False)


def plot_file_attention(
    model: SpeakerClassifier, audio: str | os.PathLike, path: str | os.PathLike
) -> np.ndarray:
    """Draw the attention view of an audio file into the PNG `path`; returns the head weights."""
    feats, time_weights, head_weights = file_alignment(model, audio)
    plot_attention(feats, time_weights, head_weights, path, title=f"{Path(audio).name}: attention")
    return head_weights
