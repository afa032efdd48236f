"""DET and Tippett plots as PNG files: headless (Agg, no pyplot state), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from balr.evaluation.metrics import (
    check_scores,
    ece_curve,
    eer_from_sweep,
    pav_llrs,
    score_sweep,
)
from balr.fileio import atomic_path

MAX_PLOT_POINTS = 2000
DET_TICKS = (0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)
LN10 = float(np.log(10.0))


def _new_figure() -> Figure:
    """A figure bound to the Agg canvas directly, so no GUI backend is ever touched."""
    figure = Figure(figsize=(6.0, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Render `figure` to `path` as PNG via a temporary file + rename."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")
    return path


def _finish_curve_plot(
    figure: Figure, axes, labels: tuple[str, str], title: str, path: str | os.PathLike
) -> Path:
    """Axis labels, title, light grid and legend of a curve plot, then save it."""
    _label_curve_plot(axes, labels, title)
    axes.legend(loc="lower left")
    return _save_png(figure, path)


def _label_curve_plot(axes, labels: tuple[str, str], title: str) -> None:
    """Axis labels, title and light grid of a curve plot."""
    axes.set_xlabel(labels[0])
    axes.set_ylabel(labels[1])
    axes.set_title(title)
    axes.grid(True, linewidth=0.4, alpha=0.6)


def _det_indices(frr: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Indices of the operating points where FRR or FAR crosses an even probit grid.

    Keeps the shape of a DET curve of any length with at most ~2 * MAX_PLOT_POINTS points.
    """
    if frr.size <= 2 * MAX_PLOT_POINTS:
        return np.arange(frr.size)
    grid = norm.cdf(np.linspace(-5.0, 5.0, MAX_PLOT_POINTS))
    by_frr = np.searchsorted(frr, grid)  # frr is non-decreasing
    by_far = far.size - 1 - np.searchsorted(far[::-1], grid)  # far is non-increasing
    picked = np.concatenate((by_frr, by_far, [0, frr.size - 1]))
    return np.unique(np.clip(picked, 0, frr.size - 1))


def _det_limits(frr: np.ndarray, far: np.ndarray, eer_value: float) -> tuple[float, float]:
    """Axis range in probability: from half the smallest non-zero rate (within 0.01%..0.5%)
    to 50%, or to 99% for a system whose EER is above 30%."""
    rates = np.concatenate((frr, far))
    low = float(np.clip(0.5 * rates[rates > 0].min(), 1e-4, 5e-3))
    return low, 0.5 if eer_value <= 0.3 else 0.99


def plot_det(
    scores: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str = "DET curve"
) -> Path:
    """Detection error trade-off curve (miss vs false-alarm rate on normal-deviate axes;
    Martin et al., Eurospeech 1997), with the EER point marked; written as a PNG at `path`."""
    sweep = score_sweep(scores, labels)
    eer_value, _ = eer_from_sweep(sweep)
    keep = _det_indices(sweep.frr, sweep.far)
    low, high = _det_limits(sweep.frr, sweep.far, eer_value)
    epsilon = low / 10.0  # zero rates are drawn just outside the axes, not at -infinity
    x = norm.ppf(np.clip(sweep.far[keep], epsilon, 1.0 - epsilon))
    y = norm.ppf(np.clip(sweep.frr[keep], epsilon, 1.0 - epsilon))

    figure = _new_figure()
    axes = figure.add_subplot()
    axes.plot(x, y, color="tab:blue", linewidth=1.5, label="system")
    bounds = norm.ppf([low, high])
    axes.plot(bounds, bounds, color="grey", linestyle=":", linewidth=0.8)
    point = norm.ppf(np.clip(eer_value, epsilon, 1.0 - epsilon))
    axes.plot([point], [point], "o", color="tab:red", label=f"EER = {100 * eer_value:.2f}%")
    ticks = [t for t in DET_TICKS if low <= t <= high]
    labels_text = [f"{100 * t:g}" for t in ticks]
    axes.set_xticks(norm.ppf(ticks), labels_text)
    axes.set_yticks(norm.ppf(ticks), labels_text)
    axes.set_xlim(*bounds)
    axes.set_ylim(*bounds)
    labels = ("False acceptance rate (%)", "False rejection rate (%)")
    return _finish_curve_plot(figure, axes, labels, title, path)


def _tippett_curve(log10_lrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and the proportion of values >= each (a 'pre' step curve)."""
    values = np.sort(log10_lrs)
    n = values.size
    ranks = np.arange(n)
    if n > MAX_PLOT_POINTS:
        ranks = np.unique(np.linspace(0, n - 1, MAX_PLOT_POINTS).round().astype(int))
    return values[ranks], (n - ranks) / n


def plot_tippett(
    scores: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    title: str = "Tippett plot",
    mark: float | None = None,
    mark_label: str = "this comparison",
) -> Path:
    """Tippett plot: proportion of target and non-target LRs >= x against x = log10(LR),
    reading scores as natural-log LLRs; written as a PNG at `path`. `mark` (a natural-log
    LLR) draws a vertical line, e.g. where a case's LR falls among the reference LRs."""
    return _save_png(tippett_figure(scores, labels, title, mark, mark_label), path)


def tippett_figure(
    scores: np.ndarray,
    labels: np.ndarray,
    title: str = "Tippett plot",
    mark: float | None = None,
    mark_label: str = "this comparison",
) -> Figure:
    """The figure of `plot_tippett`; its legend lies below the axes, so that it covers
    neither curve (both reach every corner of the plot)."""
    llrs, is_target = check_scores(scores, labels)
    log10_lrs = llrs / LN10
    finite = log10_lrs[np.isfinite(log10_lrs)]
    if mark is not None and np.isfinite(mark):
        finite = np.append(finite, mark / LN10)
    low, high = (finite.min(), finite.max()) if finite.size else (-1.0, 1.0)
    margin = max(0.05 * (high - low), 0.5)
    low, high = low - margin, high + margin
    log10_lrs = np.clip(log10_lrs, low, high)  # infinite LRs are drawn at the edges

    figure = _new_figure()
    axes = figure.add_subplot()
    for mask, name, color in (
        (is_target, "target", "tab:blue"),
        (~is_target, "non-target", "tab:red"),
    ):
        x, y = _tippett_curve(log10_lrs[mask])
        x = np.concatenate(([low], x, [high]))
        y = np.concatenate(([1.0], y, [0.0]))
        axes.step(x, y, where="pre", color=color, label=f"{name} ({int(mask.sum())})")
    axes.axvline(0.0, color="grey", linestyle=":", linewidth=0.8)
    if mark is not None:
        axes.axvline(
            float(np.clip(mark / LN10, low, high)),
            color="black",
            linewidth=1.6,
            label=f"{mark_label} (log10 LR = {mark / LN10:.2f})",
        )
    axes.set_xlim(low, high)
    axes.set_ylim(-0.02, 1.02)
    _label_curve_plot(axes, ("log10(LR)", "Proportion of LRs >= x"), title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return figure


def plot_pav(
    scores: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    title: str = "PAV: calibration of the LRs",
) -> Path:
    """lir's PAV plot (LRs before vs after optimal monotone recalibration) of natural-log
    LLRs, drawn by lir on log10 LRs; a well-calibrated system follows the diagonal."""
    import lir.plotting

    return _lir_plot(lir.plotting.pav, scores, labels, path, title)


#: prior log10 odds of the ECE plot: lir's range, every 0.05 (lir's 0.01 draws the same
#: smooth curves at 5 times the cost: 33 s on 1,000,000 trials, benchmarks/evaluation.py)
ECE_PRIOR_LOG10_ODDS = np.linspace(-3.0, 3.0, 121)


def plot_ece(
    scores: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    title: str = "Empirical cross-entropy",
) -> Path:
    """The ECE plot of natural-log LLRs, drawn as lir draws it (its range, lines and labels):
    cross-entropy over prior log10 odds for a system that always says LR = 1 (`reference`),
    the LRs, and the same after PAV. The curves are balr's `ece_curve` (memory O(trials)):
    lir's own computation took 3.8 GB and 16 s on 158,000 trials."""
    llrs, is_target = check_scores(scores, labels)
    odds = ECE_PRIOR_LOG10_ODDS
    figure = _new_figure()
    axes = figure.add_subplot()
    prior = 1.0 / (1.0 + 10.0**-odds)  # LR = 1 everywhere: the prior's entropy
    entropy = -(prior * np.log2(prior) + (1.0 - prior) * np.log2(1.0 - prior))
    axes.plot(odds, entropy, linestyle=":", label="reference")
    for label, style, values in (("LRs", "-", llrs), ("PAV LRs", "--", pav_llrs(llrs, is_target))):
        axes.plot(odds, ece_curve(values, is_target, odds), linestyle=style, label=label)
    axes.set_xlabel("prior log$_{10}$(odds)")
    axes.set_ylabel("empirical cross-entropy")
    axes.set_ylim((0, None))
    axes.set_xlim((odds[0], odds[-1]))
    axes.legend()
    axes.grid(True, linestyle=":")
    axes.set_title(title)
    return _save_png(figure, path)


def _lir_plot(draw, scores: np.ndarray, labels: np.ndarray, path, title: str) -> Path:
    """Let a lir plotting function draw on our headless figure, then save it atomically."""
    figure = _new_figure()
    axes = figure.add_subplot()
    draw(_lir_llr_data(scores, labels), ax=axes)
    axes.set_title(title)
    return _save_png(figure, path)


def _lir_llr_data(scores: np.ndarray, labels: np.ndarray):
    """lir's LLRData (log10 LRs) from natural-log LLRs, after balr's input checks."""
    from lir.data.models import LLRData

    llrs, is_target = check_scores(scores, labels)
    return LLRData(features=llrs / LN10, labels=is_target.astype(int))
