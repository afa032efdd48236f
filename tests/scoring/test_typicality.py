"""Typicality, drop-out, DNA and Speech LRs on a tiny reference worked by hand."""

import math

import numpy as np
import pytest

from balr.errors import TrialsError
from balr.scoring import DNAScorer, SpeechScorer
from balr.scoring.typicality import fit_typicality

# 4 speakers x 2 attributes, counts [a, n] (activations, non-activations):
#   attribute 0: A (2, 0)  B (1, 1)  C (0, 3)  D (3, 1)  -> profiles 1, 1, 0, 1: K1 = 3
#       T = K1 (K1 - 1) / (K (K - 1)) = 3 * 2 / (4 * 3) = 0.5
#       Dout = mean over A, B, D of n / (a + n) = (0/2 + 1/2 + 1/4) / 3 = 0.25
#   attribute 1: A (0, 2)  B (0, 2)  C (1, 2)  D (0, 4)  -> K1 = 1: T = 1 * 0 / 12 = 0
#       Dout = (2/3) / 1 = 2/3 (only C has it)
REFERENCE = np.array(
    [
        [[2, 0], [0, 2]],
        [[1, 1], [0, 2]],
        [[0, 3], [1, 2]],
        [[3, 1], [0, 4]],
    ],
    dtype=float,
)


def test_typicality_and_dropout_by_hand():
    typicality, dropout = fit_typicality(REFERENCE)
    np.testing.assert_allclose(typicality, [0.5, 0.0])
    np.testing.assert_allclose(dropout, [0.25, 2 / 3])


# With Din = 0.12, T = 0.5, Dout = 0.25 (attribute 0):
#   DNA  LR(0,0) = 1 / (0.5 (1 - 0.12 + 0.25)) = 1 / 0.565
#        LR(1,1) = 1 / (0.5 (1 - 0.25 + 0.12 * 0.5)) = 1 / 0.405
#        LR(0,1) = 0.25 / 0.5 = 0.5 ; LR(1,0) = 0.12 / (0.06 + 0.88) = 0.12 / 0.94
#        mixed cells = their mean = (0.5 + 0.12 / 0.94) / 2
DNA_00, DNA_11, DNA_MIXED = 1 / 0.565, 1 / 0.405, (0.5 + 0.12 / 0.94) / 2
#   Speech LR(0,0) = (1 + 0.25^2) / (0.5 (0.25 + 0.88)^2) = 1.0625 / (0.5 * 1.2769)
#          LR(1,1) = (1 + 0.06^2) / (0.5 (0.06 + 0.75)^2) = 1.0036 / (0.5 * 0.6561)
#          mixed: num = 0.88 * 0.12 * 0.5 + 0.25 * 0.75 = 0.0528 + 0.1875 = 0.2403
#                 LR = 0.2403 / (0.5 (0.2403 + 1 + 0.06 * 0.25)) = 0.2403 / 0.62765
SPEECH_00, SPEECH_11, SPEECH_MIXED = 1.0625 / 0.63845, 1.0036 / 0.32805, 0.2403 / 0.62765


@pytest.mark.parametrize(
    ("scorer_class", "lr00", "lr11", "mixed"),
    [(DNAScorer, DNA_00, DNA_11, DNA_MIXED), (SpeechScorer, SPEECH_00, SPEECH_11, SPEECH_MIXED)],
)
def test_lr_values_by_hand(scorer_class, lr00, lr11, mixed):
    scorer = scorer_class(drop_in=0.12, typicality_threshold=1e-4).fit(REFERENCE)
    table = scorer.bit_table()
    np.testing.assert_allclose(table[0], np.log([[lr00, mixed], [mixed, lr11]]), rtol=1e-12)
    # attribute 1 has T = 0 < threshold: it contributes log LR = 0 whatever the bits
    np.testing.assert_array_equal(table[1], np.zeros((2, 2)))
    enroll = np.array([[1, 0], [0, 1], [1, 1]])
    test = np.array([[1, 1], [0, 0], [0, 1]])
    expected = [math.log(lr11), math.log(lr00), math.log(mixed)]
    np.testing.assert_allclose(scorer.score(enroll, test), expected, rtol=1e-12)


def test_threshold_cuts_rare_attributes():
    # threshold 0.6 > T = 0.5: attribute 0 is cut too, so every score is 0
    scorer = DNAScorer(typicality_threshold=0.6).fit(REFERENCE)
    np.testing.assert_array_equal(scorer.bit_table(), np.zeros((2, 2, 2)))
    # threshold 0: T = 0 (attribute 1) still contributes 0 (its LRs divide by T)
    scorer = DNAScorer(typicality_threshold=0.0).fit(REFERENCE)
    np.testing.assert_array_equal(scorer.bit_table()[1], np.zeros((2, 2)))
    np.testing.assert_allclose(scorer.bit_table()[0, 0, 0], np.log(DNA_00))


def test_two_recordings_on_a_side_is_an_error():
    scorer = SpeechScorer().fit(REFERENCE)
    two = np.array([[[2, 0], [1, 1]]], dtype=float)  # two recordings summed
    one = np.array([[[1, 0], [0, 1]]], dtype=float)
    with pytest.raises(TrialsError, match="trial 1"):
        scorer.score(two, one)
