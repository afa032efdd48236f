"""Bar chart of one trial's per-attribute log-LR terms (drawing only)."""

from __future__ import annotations

import os

import numpy as np

from balr.fileio import atomic_path
from balr.scoring.explain import top_attributes


def plot_explanation(
    terms: np.ndarray,
    enroll_bits: np.ndarray,
    test_bits: np.ndarray,
    path: str | os.PathLike,
    k: int = 10,
    title: str = "",
) -> None:
    """PNG of the k attributes pushing most to same speaker and the k pushing most to different."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    high, low = top_attributes(terms[None, :], k)
    chosen = np.concatenate([high[0], low[0][::-1]])
    chosen = np.array(list(dict.fromkeys(chosen.tolist())))  # k may exceed half the attributes
    values = terms[chosen]
    labels = [f"BA{a}  (e={enroll_bits[a]:g}, t={test_bits[a]:g})" for a in chosen]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(chosen) + 1.5))
    axes.barh(np.arange(len(chosen)), values, color=np.where(values >= 0, "tab:green", "tab:red"))
    axes.set_yticks(np.arange(len(chosen)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel("ln LR of the attribute (> 0: same speaker, < 0: different speaker)")
    axes.set_title(f"{title}\nscore = {terms.sum():.3f} (sum over {len(terms)} attributes)")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
