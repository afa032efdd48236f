"""The bound every calibrated LR obeys on different-speaker comparisons, as a test of a
calibration on a relevant population.

A likelihood ratio that is what it claims to be has mean 1 over different-speaker pairs,
`E[LR | Hd] = 1` (Good 1950; Royall 2000; the "rate of misleading evidence" bound of
forensic validation), so by Markov's inequality

    P(LR >= x | different speakers) <= 1 / x     for every x.

Well-calibrated LRs sit far below it (the shipped ones: 0.1 % of different-speaker pairs
reach LR 100 in covered conditions, where the bound allows 1 %). Where the different-speaker
comparisons of a relevant population break it, the calibration does not hold for that
population's conditions; no one pair can show it. `BoundTest` is that check on the LLRs of
the population's different-speaker pairs, at the levels `BOUND_LRS` that the number of
pairs can test (the bound allows at least `MIN_ALLOWED_PAIRS` pairs to reach them).
Measured on held-out corpora (recipes/research/r12_population_shift.log): largest
`x * share` 0.02-0.15 as recorded, 1.6-54 through a shared telephone / hall channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: the LRs at which the bound is tested
BOUND_LRS = (1.0, 10.0, 100.0)
#: a level is tested only where the bound allows this many pairs to reach it (`n / x`):
#: a handful of pairs from one look-alike pair of speakers is not evidence of miscalibration
MIN_ALLOWED_PAIRS = 10.0
#: the fewest labelled speakers whose comparisons are tested (as a population's minimum)
MIN_BOUND_SPEAKERS = 5


@dataclass(frozen=True)
class BoundTest:
    """The different-speaker comparisons of a population against `P(LR >= x) <= 1/x`."""

    n_pairs: int
    n_speakers: int
    levels: tuple[float, ...]  # the tested LRs
    reaching: tuple[int, ...]  # pairs with LR >= each tested LR

    @property
    def excess(self) -> float:
        """The largest `x * share(LR >= x)`: above 1, the bound is broken."""
        if not self.levels or not self.n_pairs:
            return 0.0
        return max(x * r / self.n_pairs for x, r in zip(self.levels, self.reaching, strict=True))

    @property
    def broken(self) -> bool:
        return self.excess > 1.0

    def worst(self) -> tuple[float, float]:
        """`(LR level, share of pairs reaching it)` of the largest `x * share`."""
        scores = [x * r for x, r in zip(self.levels, self.reaching, strict=True)]
        k = int(np.argmax(scores))
        return self.levels[k], self.reaching[k] / self.n_pairs

    def describe(self, whose: str) -> str:
        """`31.2 % of the 4099 different-speaker comparisons of {whose} (20 speakers) reach
        LR >= 10, where calibrated LRs allow at most 10 %`."""
        level, share = self.worst()
        return (
            f"{100 * share:.1f} % of the {self.n_pairs} different-speaker comparisons of "
            f"{whose} ({self.n_speakers} speakers) reach LR >= {level:g}, where calibrated "
            f"LRs allow at most {100 / level:g} %"
        )

    def shares_text(self) -> str:
        """`LR >= 1: 4.8 % (at most 100 %), LR >= 10: 0.0 % (at most 10 %)`."""
        return ", ".join(
            f"LR >= {x:g}: {100 * r / self.n_pairs:.1f} % (at most {100 / x:g} %)"
            for x, r in zip(self.levels, self.reaching, strict=True)
        )

    def record(self) -> dict:
        return {
            "n_pairs": self.n_pairs,
            "n_speakers": self.n_speakers,
            "levels": list(self.levels),
            "reaching": list(self.reaching),
            "excess": self.excess,
            "broken": self.broken,
        }


def bound_test(n_pairs: int, n_speakers: int, reaching: Sequence[int]) -> BoundTest | None:
    """The test of `n_pairs` comparisons of `n_speakers` speakers, `reaching[k]` of them with
    LR >= `BOUND_LRS[k]`; None when too few speakers or pairs to test any level."""
    levels = [k for k, x in enumerate(BOUND_LRS) if n_pairs / x >= MIN_ALLOWED_PAIRS]
    if n_speakers < MIN_BOUND_SPEAKERS or not levels:
        return None
    return BoundTest(
        int(n_pairs),
        int(n_speakers),
        tuple(BOUND_LRS[k] for k in levels),
        tuple(int(reaching[k]) for k in levels),
    )


def bound_of_llrs(llrs: np.ndarray, n_speakers: int) -> BoundTest | None:
    """`bound_test` of different-speaker comparisons with these natural-log LRs."""
    llrs = np.asarray(llrs, dtype=np.float64)
    llrs = llrs[np.isfinite(llrs)]
    reaching = [int(np.count_nonzero(llrs >= np.log(x))) for x in BOUND_LRS]
    return bound_test(len(llrs), n_speakers, reaching)
