"""ENFSI verbal scale: every band boundary, both propositions, extreme LLRs."""

from __future__ import annotations

import math

import pytest

from balr.report import format_lr, verbal_scale

SAME, DIFF = "the same-speaker proposition", "the different-speaker proposition"


@pytest.mark.parametrize(
    ("lr", "strength"),
    [
        (2.0, "weak"),  # each band includes its lower bound
        (9.99, "weak"),
        (10.0, "moderate"),
        (99.9, "moderate"),
        (100.0, "moderately strong"),
        (999.0, "moderately strong"),
        (1_000.0, "strong"),
        (9_999.0, "strong"),
        (10_000.0, "very strong"),
        (999_999.0, "very strong"),
        (1_000_000.0, "extremely strong"),
        (1e30, "extremely strong"),
    ],
)
def test_bands_on_both_sides(lr, strength):
    same = verbal_scale(math.log(lr))
    assert (same.strength, same.supports) == (strength, SAME)
    diff = verbal_scale(-math.log(lr))  # LR = 1 / lr: the mirror band, other proposition
    assert (diff.strength, diff.supports) == (strength, DIFF)
    assert diff.sentence == f"{strength} support for {DIFF}"


@pytest.mark.parametrize("lr", [1.0, 1.99, 0.51])
def test_no_support_between_half_and_two(lr):
    verdict = verbal_scale(math.log(lr))
    assert verdict.supports is None and verdict.sentence.startswith("no support")


def test_lr_properties_and_formatting():
    verdict = verbal_scale(math.log(250.0))
    assert verdict.lr == pytest.approx(250.0) and verdict.log10_lr == pytest.approx(math.log10(250))
    assert format_lr(math.log(250.0)) == "250"
    assert format_lr(math.log(0.004)) == "0.004"
    # 5000 nats = 2171.47 decades: printed without overflow
    assert format_lr(5000.0) == "2.97e+2171"
    assert verbal_scale(5000.0).lr == math.inf
    with pytest.raises(ValueError, match="NaN"):
        verbal_scale(float("nan"))
