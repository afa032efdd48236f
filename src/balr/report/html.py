"""A single self-contained HTML file describing one comparison (plots embedded as PNG).

It opens in any browser with no server and no network: styles are inline and every image
is a base64 `data:` URI. The page only renders what the comparison computed.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from balr import __version__
from balr.fileio import atomic_write_text
from balr.report.audit_table import render_audit
from balr.report.verbal import LN_LR, format_lr, verbal_scale

if TYPE_CHECKING:  # the attributes table is a DataFrame; pandas is not imported to compare
    import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.result { font-size: 1.3em; padding: 0.8em; background: #f5f8ff; border: 1px solid #9ab; }
.note { color: #555; font-size: 0.9em; } img { max-width: 100%; }
.warning { color: #900; background: #fff0f0; border: 2px solid #c00; padding: 0.6em; }
"""


@dataclass
class Recording:
    """One input file, its duration and its net speech duration (speech frames) in seconds."""

    path: str
    duration_s: float
    speech_s: float | None = None


@dataclass
class ComparisonReport:
    """Everything the report shows; built by `balr compare`."""

    enrollment: list[Recording]
    test: list[Recording]
    llr: float
    attributes: pd.DataFrame
    contribution_plot: Callable[[Path], object]
    reference_target_llrs: np.ndarray
    reference_nontarget_llrs: np.ndarray
    models: dict[str, str]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown in red above the result
    conditions_warning: str = ""  # outside the calibration conditions: at the top and the LR
    llr_lines: list[tuple[str, float]] = field(default_factory=list)  # additive parts of the LLR
    reference_description: str = ""  # what the reference LLRs are (their counts explained)
    column_meanings: dict[str, str] = field(default_factory=dict)  # attributes table legend
    audit: dict | None = None  # the audit record (balr.audit): rendered as its own section
    population: object | None = None  # balr.population.Population adapted to, if any
    population_check: object | None = None  # balr.population_check.PopulationCheck
    population_adaptation: object | None = None  # balr.population.AdaptationDecision
    population_conditions: dict | None = None  # the conditions the case was checked against


def write_report(path: str | os.PathLike, report: ComparisonReport) -> Path:
    """Render `report` to `path` atomically and return the path."""
    path = Path(path)
    atomic_write_text(path, render_report(report))
    return path


def render_report(report: ComparisonReport) -> str:
    """The report as one HTML string."""
    verdict = verbal_scale(report.llr)
    contribution_png = _png(report.contribution_plot)
    tippett = _tippett_section(report)
    sections = [
        f"<h1>Speaker comparison report</h1><p class='note'>balr {__version__}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        *(
            f"<p class='warning'><b>Warning:</b> {html.escape(w)}</p>"
            for w in [report.conditions_warning, *report.warnings]
            if w
        ),
        _inputs_section(report),
        _result_section(report.llr, verdict, report.conditions_warning),
        "<h2>Attribute contributions</h2>"
        f"<p>The {LN_LR} is a sum over binary voice attributes; these pushed it most towards "
        "same speaker (positive) and different speaker (negative).</p>"
        f"{_llr_lines(report.llr, report.llr_lines)}"
        f"{_img(contribution_png, 'attribute contributions')}"
        f"{_attributes_table(report.attributes)}"
        f"{_column_meanings(report.column_meanings)}",
        f"<h2>Where this LR falls in the reference population</h2>{tippett}",
        "<h2>Models and reference population</h2>" + _table(report.models),
    ]
    if report.population_check is not None:
        sections.insert(-2, _population(report))
    if report.notes:
        sections.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
            + "</ul>"
        )
    if report.audit is not None:
        sections.append(render_audit(report.audit))
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>balr comparison: {html.escape(verdict.sentence)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _tippett_section(report: ComparisonReport) -> str:
    """The Tippett plot of the reference LLRs with this LLR marked, and what they are."""
    from balr.evaluation import plot_tippett

    if not (len(report.reference_target_llrs) and len(report.reference_nontarget_llrs)):
        return "<p>No reference LLRs were given for these models: no Tippett plot.</p>"
    reference_scores = np.concatenate(
        [report.reference_target_llrs, report.reference_nontarget_llrs]
    )
    reference_labels = np.r_[
        np.ones(len(report.reference_target_llrs)), np.zeros(len(report.reference_nontarget_llrs))
    ]
    return (
        _img(
            _png(
                lambda p: plot_tippett(
                    reference_scores,
                    reference_labels,
                    p,
                    title="Reference population LRs",
                    mark=report.llr,
                )
            ),
            "Tippett plot",
        )
        + f"<p>{_reference_sentence(report)}</p>"
        + _reference_description(report.reference_description)
    )


def _population(report: ComparisonReport) -> str:
    from balr.report.population import plot_population_check, population_section

    check = report.population_check
    image = _img(_png(lambda p: plot_population_check(check, p)), "population check")
    return population_section(
        report.population, check, image, report.population_adaptation,
        report.population_conditions,
    )  # fmt: skip


def _inputs_section(report: ComparisonReport) -> str:
    rows = [
        (side, html.escape(os.path.abspath(r.path)), f"{r.duration_s:.2f} s", _seconds(r.speech_s))
        for side, recs in (("enrollment", report.enrollment), ("test", report.test))
        for r in recs
    ]
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        "<h2>Inputs</h2><table><tr><th>side</th><th>file</th><th>duration</th>"
        f"<th>net speech</th></tr>{cells}</table>"
    )


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f} s"


def _result_section(llr: float, verdict, conditions_warning: str = "") -> str:
    caveat = ""
    if conditions_warning:  # its text is in the warning at the top: named, not repeated
        caveat = (
            "<p class='warning'><b>Outside the calibration conditions</b> (see the warning at "
            "the top): this LR may mislead.</p>"
        )
    return (
        "<h2>Result</h2><div class='result'>"
        f"LR = {format_lr(llr)} &nbsp; (log10 LR = {verdict.log10_lr:.2f}, {LN_LR} = "
        f"{llr:.3f})<br><b>{html.escape(verdict.sentence)}</b> (ENFSI verbal scale)</div>"
        f"{caveat}"
    )


def _llr_lines(llr: float, lines: list[tuple[str, float]]) -> str:
    """The additive parts of the LLR as a small table ending with their sum."""
    if not lines:
        return ""
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(label)}</td><td>{value:+.3f}</td></tr>"
        for label, value in lines
    )
    return (
        f"<table>{rows}<tr><th style='text-align:left'>{LN_LR}</th><th>{llr:.3f}</th></tr></table>"
    )


def _attributes_table(attributes: pd.DataFrame) -> str:
    """The attributes table, its contributions labelled with their unit."""
    named = attributes.rename(columns={"contribution": f"contribution ({LN_LR})"})
    return named.to_html(index=False, float_format=lambda v: f"{v:.3f}")


def _reference_description(text: str) -> str:
    return f"<p class='note'>Reference LLRs: {html.escape(text)}</p>" if text else ""


def _column_meanings(meanings: dict[str, str]) -> str:
    """What each column of the attributes table means, as a definition list."""
    if not meanings:
        return ""
    items = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>"
        for name, text in meanings.items()
    )
    return f"<p class='note'>Columns of the table:</p><dl class='note'>{items}</dl>"


def _reference_sentence(report: ComparisonReport) -> str:
    target = np.asarray(report.reference_target_llrs)
    nontarget = np.asarray(report.reference_nontarget_llrs)
    above_non = float(np.mean(nontarget >= report.llr)) if len(nontarget) else float("nan")
    below_tar = float(np.mean(target <= report.llr)) if len(target) else float("nan")
    return (
        f"Among {len(nontarget)} different-speaker reference comparisons, {above_non:.1%} have an "
        f"LR at least this large; among {len(target)} same-speaker reference comparisons, "
        f"{below_tar:.1%} have an LR at most this large."
    )


def _table(mapping: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td style='text-align:left'>{html.escape(str(v))}"
        "</td></tr>"
        for k, v in mapping.items()
    )
    return f"<table>{rows}</table>"


def _png(draw: Callable[[Path], object]) -> bytes:
    """Run a plotting function that writes a PNG path; return the PNG bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        return path.read_bytes()


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<p><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'></p>"
