"""Human-readable results: the ENFSI verbal scale and the HTML comparison report."""

from balr.report.verbal import VerbalLR, format_lr, verbal_scale

__all__ = ["VerbalLR", "format_lr", "verbal_scale"]
