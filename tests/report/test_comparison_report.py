"""The comparison report's text (issue 19 point 4): absolute input paths, each warning once,
a wrapped chart title, the Tippett legend off the curves, every column explained, and the
reference LLR counts explained against the calibration's."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from balr import defaults
from balr.calibration import Calibrator
from balr.evaluation.plots import tippett_figure
from balr.report.html import ComparisonReport, Recording, render_report
from balr.report.reference import ReferenceLLRs, read_reference_llrs, reference_text
from balr.report.text import (
    COLUMN_MEANINGS,
    TITLE_WIDTH,
    column_meanings,
    conditions_warning,
    contribution_title,
)

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4aa0000000049454e44ae426082"
)


def _report(tmp_path, monkeypatch, **changes) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "case").mkdir()
    attributes = pd.DataFrame(
        [{"towards": "same", "attribute": "BA3", "contribution": 0.5, "enrollment": "1",
          "test": "1", "alpha_0": 2.0, "alpha_1": 5.0}]
    )  # fmt: skip
    report = ComparisonReport(
        enrollment=[Recording("case/a.wav", 4.0, 3.5)],
        test=[Recording("case/b.wav", 5.0, 4.0)],
        llr=1.5,
        attributes=attributes,
        contribution_plot=lambda path: path.write_bytes(PNG_1X1),
        reference_target_llrs=np.array([1.0, 2.0, 3.0]),
        reference_nontarget_llrs=np.array([-1.0, -2.0, -3.0, 0.5]),
        models={"scorer": "beta"},
        column_meanings=column_meanings(list(attributes.columns)),
        reference_description="3 same-speaker and 4 different-speaker LLRs, given with "
        "--reference.",
    )
    for key, value in changes.items():
        setattr(report, key, value)
    return render_report(report)


def test_inputs_are_shown_by_absolute_path_once(tmp_path, monkeypatch):
    page = _report(tmp_path, monkeypatch)
    absolute = os.path.join(str(tmp_path), "case", "a.wav")
    assert page.count(absolute) == 1
    assert page.count(os.path.join(str(tmp_path), "case", "b.wav")) == 1
    assert "<td>case/a.wav</td>" not in page


def test_the_conditions_warning_is_written_once(tmp_path, monkeypatch):
    warning = conditions_warning("test speech 0.4 s below the calibrated 0.9-12.0 s")
    page = _report(tmp_path, monkeypatch, conditions_warning=warning)
    assert page.count(warning) == 1
    assert "Outside the calibration conditions</b> (see the warning at the top)" in page


def test_every_table_column_is_explained(tmp_path, monkeypatch):
    page = _report(tmp_path, monkeypatch)
    for column in ("towards", "attribute", "contribution", "enrollment", "test"):
        assert f"<dt>{column}</dt>" in page
    assert (
        "<dt>alpha_0</dt><dd>beta scorer: the Beta prior&#x27;s pseudo-count of activations" in page
    )
    assert "<dt>alpha_1</dt>" in page
    assert "Reference LLRs: 3 same-speaker and 4 different-speaker LLRs" in page
    assert column_meanings(["alpha_1", "nope", "typicality"]) == {
        "alpha_1": COLUMN_MEANINGS["alpha_1"],
        "typicality": COLUMN_MEANINGS["typicality"],
    }


def test_a_long_chart_title_is_wrapped_not_cut():
    title = contribution_title(8.911, 0.213, "recording durations", 12.345, -3.434)
    assert title.split("\n") == [
        "contributions + recording durations 0.21 = 12.35,",
        "limited to 8.91 (ELUB)",
    ]
    unbounded = contribution_title(-0.14, -0.08, "recording durations", -0.14, 0.0)
    assert unbounded.split("\n") == [
        "calibrated ln LR -0.14",
        "= contributions + recording durations -0.08",
    ]
    assert all(len(line) <= TITLE_WIDTH for line in (title + "\n" + unbounded).split("\n"))
    short = contribution_title(1.0, 0.5, "offset", 1.0, 0.0)
    assert short == "calibrated ln LR 1.00 = contributions + offset 0.50"


def test_the_tippett_legend_lies_below_the_axes():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(3, 2, 200), rng.normal(-3, 2, 2000)]
    labels = np.r_[np.ones(200), np.zeros(2000)]
    figure = tippett_figure(scores, labels, mark=2.0)
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent(renderer)
    assert legend.y1 < axes.get_window_extent(renderer).y0
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [
        "target (200)", "non-target (2000)", "this comparison (log10 LR = 0.87)"
    ]  # fmt: skip


@pytest.mark.skipif(not defaults.REFERENCE_LLRS.is_file(), reason="no shipped reference LLRs")
def test_the_shipped_reference_counts_are_explained_against_the_calibration():
    reference = read_reference_llrs(defaults.REFERENCE_LLRS)
    assert (len(reference.target), len(reference.nontarget)) == (5445, 60135)
    assert reference.counts == {
        "librispeech": (438, 20000),
        "speechocean": (3300, 20000),
        "commonvoice": (1689, 20000),
        "voxceleb": (18, 135),
    }
    text = reference_text(reference, True, Calibrator.load(defaults.CALIBRATION))
    assert text.startswith("5,445 same-speaker and 60,135 different-speaker LLRs")
    assert "speakers are disjoint from those of the calibration" in text
    assert "a seeded sample of at most 20,000 per corpus" in text
    assert "The calibration counts (5,722 / 453,438) are all pairs of other speakers" in text
    assert "commonvoice, librispeech, speechocean" in text


def test_reference_without_corpus_arrays_is_counted_as_a_whole(tmp_path):
    np.savez(tmp_path / "r.npz", target=np.ones(3), nontarget=np.zeros(5))
    reference = read_reference_llrs(tmp_path / "r.npz")
    assert reference.counts == {} and reference_text(reference, False, None) == (
        "3 same-speaker and 5 different-speaker LLRs, given with --reference."
    )
    assert reference_text(ReferenceLLRs.empty(), False, None).startswith("0 same-speaker")


def test_damaged_reference_llrs_are_one_line_errors(tmp_path):
    from balr.errors import DataError

    path = tmp_path / "r.npz"
    np.savez(path, target=np.array([1.0, np.nan]), nontarget=np.zeros(3))
    with pytest.raises(DataError, match=r"r\.npz: 'target' holds 1 non-finite LLRs"):
        read_reference_llrs(path)
    corpora = {"corpora": np.array(["a", "b"]), "target_corpus": np.array([0, 1])}
    np.savez(path, target=np.ones(2), nontarget=np.zeros(3), **corpora)
    with pytest.raises(DataError, match="'nontarget_corpus' is missing"):
        read_reference_llrs(path)
    np.savez(path, target=np.ones(2), nontarget=np.zeros(3), nontarget_corpus=np.zeros(2, int),
             **corpora)  # fmt: skip
    with pytest.raises(DataError, match=r"'nontarget_corpus' must hold one corpus index \(0-1\)"):
        read_reference_llrs(path)
