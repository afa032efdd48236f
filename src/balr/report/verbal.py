"""The ENFSI verbal equivalents of a likelihood ratio.

Decision on the boundaries: the ENFSI guideline's bands are 1 (no support), 2-10 (weak),
10-100 (moderate), 100-1,000 (moderately strong), 1,000-10,000 (strong), 10,000-1,000,000
(very strong) and above (extremely strong). An LR between 1/2 and 2 is reported as "no
support"; every band includes its lower bound (LR = 10 is "moderate"). An LR below 1 is
described by 1/LR on the same scale, in support of the different-speaker proposition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BANDS: tuple[tuple[float, str], ...] = (
    (1e6, "extremely strong"),
    (1e4, "very strong"),
    (1e3, "strong"),
    (1e2, "moderately strong"),
    (1e1, "moderate"),
    (2.0, "weak"),
)
LN_LR = "ln LR"  # the unit name of natural-log LRs, in the terminal and the HTML report
SAME_SPEAKER = "the same-speaker proposition"
DIFFERENT_SPEAKER = "the different-speaker proposition"


@dataclass(frozen=True)
class VerbalLR:
    """An LR with its log10 and its verbal equivalent."""

    llr: float
    strength: str
    supports: str | None

    @property
    def lr(self) -> float:
        return math.exp(self.llr) if self.llr < 709 else math.inf

    @property
    def log10_lr(self) -> float:
        return self.llr / math.log(10)

    @property
    def sentence(self) -> str:
        if self.supports is None:
            return "no support for either proposition (1/2 < LR < 2)"
        return f"{self.strength} support for {self.supports}"


def verbal_scale(llr: float) -> VerbalLR:
    """Verbal equivalent of a natural-log LR on the ENFSI scale."""
    if math.isnan(llr):
        raise ValueError("the log-LR is NaN")
    magnitude = abs(llr) / math.log(10)  # log10 of max(LR, 1/LR)
    for bound, strength in BANDS:
        if magnitude >= math.log10(bound) - 1e-12:  # LR = 1000 exactly is "strong"
            return VerbalLR(llr, strength, SAME_SPEAKER if llr > 0 else DIFFERENT_SPEAKER)
    return VerbalLR(llr, "no", None)


def format_lr(llr: float) -> str:
    """`LR = 1.2e+03` style text for any natural-log LR (no overflow)."""
    if abs(llr) < 700:
        return f"{math.exp(llr):.3g}"
    log10 = llr / math.log(10)
    exponent = math.floor(log10)
    mantissa = round(10 ** (log10 - exponent), 2)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.2f}e{exponent:+d}"
