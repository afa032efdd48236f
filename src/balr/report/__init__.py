"""Human-readable results: the ENFSI verbal scale and the HTML comparison report."""

from balr.report.verbal import LN_LR, VerbalLR, format_lr, verbal_scale

__all__ = ["LN_LR", "VerbalLR", "format_lr", "verbal_scale"]
