"""Text of the comparison output: model descriptions, warnings, chart titles, bit counts."""

from __future__ import annotations

import math
import textwrap

import numpy as np

from balr.calibration import Calibrator
from balr.conditions import NO_DESCRIPTION, ConditionsDescription

#: characters per line of a chart title (wider titles are wrapped, never cut)
TITLE_WIDTH = 60
CONDITIONS_ADVICE = (
    "the calibrated LR may mislead; calibrate on recordings relevant to this case with "
    "`balr score calibrate` (docs/scoring.md)"
)


def conditions_warning(reason: str) -> str:
    """The warning of a comparison outside (or not checkable against) the calibration's
    conditions, with the advice to calibrate on a relevant population."""
    if reason == NO_DESCRIPTION:
        return f"the calibration conditions cannot be checked ({reason}): {CONDITIONS_ADVICE}"
    return f"outside the conditions of the calibration ({reason}): {CONDITIONS_ADVICE}"


def bits_text(counts: np.ndarray) -> str:
    """`1`/`0` for one recording, `a/(a+n)` for several."""
    a, n = float(counts[0]), float(counts[1])
    return f"{a:g}" if a + n == 1 else f"{a:g}/{a + n:g}"


def conditions_text(conditions: ConditionsDescription | None) -> str:
    """One line describing the calibration's conditions (speech range, similarity)."""
    if conditions is None:
        return NO_DESCRIPTION
    low, high = conditions.speech_range_s_
    return (
        f"net speech {low:.1f}-{high:.1f} s, similarity to the {conditions.n_recordings_} "
        f"calibration recordings ({conditions.vector_kind_} vectors) >= "
        f"{conditions.similarity_threshold_:.2f}"
    )


def calibration_text(calibrator: Calibrator | None, source: str) -> str:
    """One line describing the calibration: method, source, trial counts, ELUB bounds."""
    if calibrator is None:
        return "none (scores are the scorer's own log-LRs)"
    text = f"{calibrator.method} ({source}), fitted on {calibrator.n_target_} same-speaker and "
    text += f"{calibrator.n_nontarget_} different-speaker trials"
    if calibrator.lower_bound_ is not None:
        text += (
            f"; ELUB bounds log10 LR in [{calibrator.lower_bound_ / math.log(10):.2f}, "
            f"{calibrator.upper_bound_ / math.log(10):.2f}]"
        )
    return text


def contribution_title(
    llr: float, offset: float, offset_label: str, total: float, bounding: float
) -> str:
    """The contribution chart's title, in lines of at most `TITLE_WIDTH` characters broken
    between its clauses (a long title is wrapped, never cut)."""
    offset_text = f"{offset_label} {offset:.2f}"
    if not bounding:
        clauses = [f"calibrated ln LR {llr:.2f}", f"= contributions + {offset_text}"]
    else:
        clauses = [f"contributions + {offset_text} = {total:.2f},", f"limited to {llr:.2f} (ELUB)"]
    lines = [clauses[0]]
    for clause in clauses[1:]:
        if len(lines[-1]) + 1 + len(clause) <= TITLE_WIDTH:
            lines[-1] += f" {clause}"
        else:
            lines.append(clause)
    return "\n".join(line for text in lines for line in textwrap.wrap(text, TITLE_WIDTH))


#: what each column of the attributes table means (the scorers' fitted parameters included)
COLUMN_MEANINGS = {
    "towards": "the proposition the attribute supports: same (positive contribution) or "
    "different speaker (negative)",
    "attribute": "binary attribute i (output i of the binary-attribute encoder)",
    "contribution": "the attribute's share of the calibrated ln LR (the calibration slope "
    "times the scorer's log-LR term of the attribute)",
    "enrollment": "the attribute in the enrollment recordings: 1 active, 0 inactive; with "
    "several recordings, active/total",
    "test": "the same for the test recordings",
    "alpha_0": "beta scorer: the Beta prior's pseudo-count of activations of the attribute "
    "in the reference population (alpha_0 / (alpha_0 + alpha_1) is the mean activation rate "
    "of a speaker)",
    "alpha_1": "beta scorer: the pseudo-count of non-activations; a large alpha_0 + alpha_1 "
    "means the rate varies little between speakers, so a shared value is weak evidence",
    "typicality": "share of pairs of reference speakers who both have the attribute: a low "
    "typicality makes a shared attribute strong evidence",
    "dropout": "mean share of the recordings of a speaker who has the attribute in which it "
    "is inactive (drop-out)",
    "f": "maxllr scorer: share of reference speakers who have the attribute",
    "p": "maxllr scorer: activation rate of the attribute for a speaker who has it",
    "q": "maxllr scorer: activation rate for a speaker who does not have it",
}


def column_meanings(columns: list[str]) -> dict[str, str]:
    """The meanings of the given columns that are known, in their order."""
    return {c: COLUMN_MEANINGS[c] for c in columns if c in COLUMN_MEANINGS}
