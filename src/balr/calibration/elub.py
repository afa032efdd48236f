"""Empirical lower and upper bounds (ELUB) of calibrated LLRs (Vergeer et al., "Numerical
likelihood ratios outputted by LR systems are often based on extrapolation: when to stop
extrapolating?", Science & Justice 2016)."""

from __future__ import annotations

import math

import numpy as np


def elub_bounds(
    llrs10: np.ndarray,
    labels: np.ndarray,
    add_misleading: int = 1,
    step: float = 0.01,
    extremes: tuple[float, float] = (-9.0, 9.0),
    weights: np.ndarray | None = None,
) -> tuple[float, float]:
    """Empirical lower and upper bounds (log10) of calibrated log10 LLRs (Vergeer et al. 2016).

    On a grid of log10 thresholds t (every `step`), the system's expected utility
    `1 - P(accept | Hp) + 10^t P(accept | Hd)` (accept: LLR > t, with `add_misleading`
    misleading LLRs added to each side) is compared with a neutral system's; the bounds are
    the thresholds nearest 0 beyond which the system does worse than neutral. The same
    definition as lir's `elub`, computed with two sorted arrays in O(n log n) time and
    O(n + thresholds) memory (lir builds an n x thresholds matrix: gigabytes at 500k trials).

    `weights` (per trial, e.g. `balanced_weights` of the calibration's groups, so that the
    bounds rest on the same corpus-balanced trials as the fit): the two probabilities are
    weighted shares, each added misleading LLR weighing as an average trial of its class
    (equal weights within each class give exactly the unweighted bounds).
    """
    llrs10 = np.clip(np.asarray(llrs10, dtype=np.float64), *extremes)
    is_target = np.asarray(labels) == 1
    weights = np.ones(len(llrs10)) if weights is None else np.asarray(weights, np.float64)
    low = max(llrs10.min(), -math.log10(is_target.sum() + 1))
    high = min(llrs10.max(), math.log10((~is_target).sum() + 1))
    first, last = min(0, int(low // step)), max(0, int(high // step) + 1)
    thresholds = np.linspace(first * step, last * step, last - first + 1)

    def accepted(members: np.ndarray) -> tuple[np.ndarray, float]:
        """Per threshold, the weight of `members` above it (in average trials of theirs),
        and their count."""
        order = np.argsort(llrs10[members], kind="stable")
        sorted_llrs, sorted_weights = llrs10[members][order], weights[members][order]
        mean = sorted_weights.mean() if len(sorted_weights) else 1.0
        above = np.concatenate([np.cumsum(sorted_weights[::-1])[::-1], [0.0]]) / mean
        return above[np.searchsorted(sorted_llrs, thresholds, side="right")], len(sorted_llrs)

    accepted_targets, n_targets = accepted(is_target)
    accepted_nontargets, n_nontargets = accepted(~is_target)
    p_accept_target = accepted_targets / (n_targets + add_misleading)
    p_accept_nontarget = (accepted_nontargets + add_misleading) / (n_nontargets + add_misleading)
    utility_system = 1 - p_accept_target + 10**thresholds * p_accept_nontarget
    neutral_accepts = (thresholds < 0).astype(np.float64)
    utility_neutral = 1 - neutral_accepts + 10**thresholds * neutral_accepts
    worse = utility_neutral / utility_system < 1
    lower = np.max(thresholds[(thresholds <= 0) & worse] + step, initial=thresholds.min())
    upper = np.min(thresholds[(thresholds >= 0) & worse] - step, initial=thresholds.max())
    return float(min(lower, 0.0)), float(max(upper, 0.0))
