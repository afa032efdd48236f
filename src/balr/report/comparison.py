"""The report of one comparison (`balr compare --report`): its chart and HTML page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from balr.audit import comparison_record, report_record_path, write_record
from balr.report.html import ComparisonReport, write_report
from balr.report.reference import read_reference_llrs, reference_text
from balr.report.text import column_meanings, contribution_title
from balr.scoring.plots import plot_explanation

if TYPE_CHECKING:
    from balr.compare.pipeline import Comparison
    from balr.compare.result import ComparisonResult


def contribution_plot(result: ComparisonResult, k: int) -> Callable[[Path], None]:
    """A function drawing the k attributes pushing most each way as a PNG at a path."""
    total = result.contributions.sum() + result.offset
    title = contribution_title(
        result.llr, result.offset, result.offset_label, total, result.bounding
    )

    def draw(path: Path) -> None:
        plot_explanation(
            result.contributions,
            result.enroll_counts[:, 0],
            result.test_counts[:, 0],
            path,
            k,
            title=title,
        )

    return draw


def write_comparison_report(
    comparison: Comparison, path: Path, k: int, reference: Path | None = None
) -> Path:
    """The self-contained HTML report of `comparison`; `reference`: an NPZ of reference
    LLRs (arrays `target`, `nontarget`), by default the pipeline's."""
    pipeline, result = comparison.pipeline, comparison.result
    shipped = reference is None and pipeline.uses_shipped_reference
    reference = reference or pipeline.reference_llrs
    references = read_reference_llrs(reference)
    record = comparison_record(comparison, reference)
    write_record(report_record_path(path), record)
    attributes = result.top_attributes(k)
    return write_report(
        path,
        ComparisonReport(
            enrollment=result.enrollment,
            test=result.test,
            llr=result.llr,
            attributes=attributes,
            contribution_plot=contribution_plot(result, k),
            reference_target_llrs=references.target,
            reference_nontarget_llrs=references.nontarget,
            models=pipeline.description,
            notes=result.notes,
            warnings=result.warnings,
            conditions_warning=result.conditions_warning,
            llr_lines=result.llr_lines(),
            reference_description=reference_text(references, shipped, pipeline.calibrator),
            column_meanings=column_meanings(list(attributes.columns)),
            audit=record,
            population=result.population,
            population_check=result.population_check,
            population_adaptation=result.population_adaptation,
            population_conditions=result.population_conditions,
        ),
    )
