"""`balr compare --report` records what it read (in the HTML and beside it, as JSON), and
`balr verify` on the report says which of those files changed since."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from balr import __version__, defaults
from balr.audit import REPORT_RECORD_SUFFIX
from balr.cli.main import main
from balr.conditions import sidecar_path
from balr.report.audit_table import render_audit
from tests.conftest import EXAMPLES

CLIPS = EXAMPLES / "audio"


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """`balr compare` of two bundled clips (copied) with the shipped models, `--report`."""
    folder = tmp_path_factory.mktemp("case")
    enrollment = shutil.copyfile(CLIPS / "id00906" / "00014.flac", folder / "questioned.flac")
    test = shutil.copyfile(CLIPS / "id00906" / "00028.flac", folder / "suspect.flac")
    report = folder / "case.html"
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(enrollment), "--test", str(test), "--report", str(report)])
    assert exit_info.value.code in (0, None)
    return report, enrollment, test


def verify(target, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(target)])
    return exit_info.value.code or 0, capsys.readouterr().out.splitlines()


@pytest.mark.slow
def test_compare_records_the_audio_and_every_shipped_model_with_its_hash(compared):
    report, enrollment, test = compared
    record = json.loads(report.with_suffix(REPORT_RECORD_SUFFIX).read_text())
    assert record["balr_version"] == __version__
    sha = {entry["path"]: entry["sha256"] for entry in record["inputs"]}
    assert [(e["role"], e["path"]) for e in record["inputs"]] == [
        ("enrollment audio", str(enrollment)),
        ("test audio", str(test)),
    ]
    assert sha[str(test)] == hashlib.sha256(test.read_bytes()).hexdigest()
    manifest = defaults.read_manifest()
    shipped = {
        "embedding model": [defaults.GE2E_WEIGHTS],
        "binary-attribute encoder": [defaults.BAE_CHECKPOINT],
        "scorer": [defaults.SCORER_CHECKPOINT],
        "calibration": [defaults.CALIBRATION],
        "calibration conditions": [sidecar_path(defaults.CALIBRATION)],
        "typicality scorer": [defaults.TYPICALITY_CHECKPOINT],
        "channel reference": [defaults.CHANNEL_REFERENCE],
        "reference LLRs": [defaults.REFERENCE_LLRS],
    }
    expected = [
        (role, str(path), manifest[defaults.manifest_key(path)])
        for role, paths in shipped.items()
        for path in paths
    ]
    assert [(e["role"], e["path"], e["sha256"]) for e in record["models"]] == expected
    page = report.read_text()
    assert render_audit(record) in page and "<h2>Audit trail</h2>" in page
    assert all(digest in page for *_, digest in expected)


@pytest.mark.slow
def test_verify_a_report_names_exactly_the_audio_that_changed(compared, capsys):
    report, _, test = compared
    status, lines = verify(report, capsys)
    assert status == 0 and lines[-1] == "10 unchanged, 0 changed, 0 missing"
    test.write_bytes(test.read_bytes() + b"\0")
    status, lines = verify(report, capsys)
    assert status == 1 and lines[-1] == "9 unchanged, 1 changed, 0 missing"
    assert [line for line in lines if not line.startswith(("unchanged", "  ", "record"))] == [
        f"changed   inputs/test audio: {test}",
        "9 unchanged, 1 changed, 0 missing",
    ]
