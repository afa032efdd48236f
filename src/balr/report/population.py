"""The population check in the HTML report: the case LR among the population's LRs."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from balr.population import Population
from balr.population_check import NOT_EXCEPTIONAL_SHARE, PopulationCheck
from balr.population_decision import AdaptationDecision
from balr.report.verbal import LN_LR


def plot_population_check(check: PopulationCheck, path: Path) -> None:
    """Both sides' LLRs with each population speaker as dots, the case LLR as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.6))
    for row, (label, values) in enumerate(
        (
            ("test vs population", check.test_llrs),
            ("enrollment vs population", check.enrollment_llrs),
        )
    ):
        jitter = np.random.default_rng(row).uniform(-0.15, 0.15, len(values))
        ax.scatter(values, row + jitter, s=14, alpha=0.7, label=label)
    ax.axvline(check.case_llr, color="#c00", linewidth=2, label=f"case {LN_LR}")
    ax.set_yticks([0, 1], ["test", "enrollment"])
    ax.set_xlabel(f"{LN_LR} with each population speaker")
    ax.set_title(f"{check.n_reaching} of {len(check.llrs)} population comparisons reach the case")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def population_section(
    population: Population,
    check: PopulationCheck,
    image: str,
    adaptation: AdaptationDecision | None = None,
    conditions: dict | None = None,
) -> str:
    """The report section: what the population is, whether the scorer adapted to it, which
    conditions the case was checked against (`conditions`: the `population_conditions`
    record), the check's figures and its plot."""
    verdict = (
        "The case LR is exceptional among the population."
        if check.exceptional
        else "The case LR is <b>not exceptional</b> among the population: treat it with care."
    )
    return (
        "<h2>Population check</h2>"
        f"<p>The {html.escape(population.describe())}: {html.escape(_adapted(adaptation))}. "
        f"{html.escape(conditions_sentence(conditions))}The test "
        "recording(s) and the enrollment were each scored against every population speaker: "
        f"{html.escape(check.summary())}, an empirical false-alarm rate for this case "
        f"(a case reached by {100 * NOT_EXCEPTIONAL_SHARE:g} % or more is not exceptional). "
        f"{verdict}</p>{image}"
    )


def conditions_sentence(record: dict | None) -> str:
    """Which conditions the case's recordings were checked against, from the
    `population_conditions` record ('' without one)."""
    if record is None:
        return ""
    if record.get("applied"):
        return (
            "As it tested the calibration, the case's recordings were checked against its "
            f"conditions (the channel of {record['n_profiles']} of its recordings) and the "
            "calibration's: a recording is out of conditions only when out of both. "
        )
    reason = record["reason"]
    return f"The case's recordings were checked against the calibration's conditions: {reason}. "


def _adapted(adaptation: AdaptationDecision | None) -> str:
    if adaptation is None:
        return "the scorer adapted to it"
    return f"the scorer was {adaptation.describe()}"
