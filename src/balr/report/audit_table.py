"""The audit trail section of the comparison report: the run, then every file it read with
its absolute path and SHA-256 (`balr.audit`); `balr verify` checks them again."""

from __future__ import annotations

import html

from balr.audit import SECTIONS, record_summary


def render_audit(record: dict) -> str:
    """An HTML section for an audit record (its warnings are shown at the report's top, so
    not repeated here; `balr verify` lists them)."""
    about = "".join(
        f"<tr><td>{html.escape(label)}</td><td style='text-align:left'>{html.escape(value)}"
        "</td></tr>"
        for label, value in record_summary(record)
        if label != "warning"
    )
    rows = "".join(
        f"<tr><td>{section}</td><td style='text-align:left'>{html.escape(entry['role'])}</td>"
        f"<td style='text-align:left'>{html.escape(entry['path'])}</td>"
        f"<td style='text-align:left'><code>{entry['sha256']}</code></td></tr>"
        for section in SECTIONS
        for entry in record.get(section, [])
    )
    return (
        "<h2>Audit trail</h2>"
        "<p>The files this comparison read, with their SHA-256. <code>balr verify "
        "REPORT.html</code> reads the same record from <code>REPORT.audit.json</code>, written "
        "beside the report, recomputes the hashes and says which files changed since.</p>"
        f"<table>{about}</table>"
        "<table><tr><th>group</th><th>role</th><th>absolute path</th><th>SHA-256</th></tr>"
        f"{rows}</table>"
    )
