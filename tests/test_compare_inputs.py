"""`balr compare` input checks: folders, the same recording on both sides, --explain,
--reference (checked before anything is computed, refused without --report)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from balr.compare import check_audio_files, load_reference_llrs, same_recording_warnings
from balr.errors import AudioError, DataError
from tests.test_compare import CLIPS, OTHER, SAME, ge2e, models, pipeline  # noqa: F401


def run_compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "balr.cli.main", "compare", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def model_overrides(folder) -> list[str]:
    return [
        f"encoder.model.checkpoint_path={folder / 'bae.safetensors'}",
        f"scorer.checkpoint_path={folder / 'scorer.safetensors'}",
    ]


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_directory_is_named_as_a_directory(pipeline):  # noqa: F811
    folder = CLIPS / "id00906"
    with pytest.raises(AudioError, match=r"id00906: is a directory; compare expects audio files"):
        pipeline.compare([folder], [OTHER])
    with pytest.raises(AudioError, match="is a directory"):
        check_audio_files([SAME[0], folder])


def test_same_recording_on_both_sides_is_flagged(pipeline, tmp_path):  # noqa: F811
    copy = tmp_path / "copy.flac"
    shutil.copyfile(SAME[0], copy)
    assert same_recording_warnings([SAME[0]], [SAME[1], OTHER]) == []
    [by_path] = same_recording_warnings(
        [SAME[0]], [CLIPS / "id00906" / ".." / SAME[0].relative_to(CLIPS)]
    )
    assert "same file" in by_path and "no evidence" in by_path
    [by_content] = same_recording_warnings([SAME[1], SAME[0]], [copy])
    assert "identical audio content" in by_content and str(copy) in by_content
    result = pipeline.compare([SAME[0]], [copy])
    assert len(result.warnings) == 1
    assert pipeline.compare([SAME[0]], [SAME[1]]).warnings == []


@pytest.mark.slow
def test_cli_warns_before_the_lr_and_in_the_report(models, tmp_path):  # noqa: F811
    report = tmp_path / "report.html"
    result = run_compare(
        str(SAME[0]), "--test", str(SAME[0]), "--report", str(report), *model_overrides(models)
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "WARNING:" in out and out.index("WARNING:") < out.index("LR = ")
    assert "same recording" in out
    html = report.read_text()
    assert "class='warning'" in html and "no evidence about the speaker" in html
    assert html.index("class='warning'") < html.index("<h2>Result</h2>")


@pytest.mark.slow
@pytest.mark.parametrize("explain", ["-3", "-1"])
def test_negative_explain_is_refused(explain):
    result = run_compare(str(SAME[0]), "--test", str(OTHER), "--explain", explain)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: --explain {explain}: give the number of attributes to list (0 or more)"
    ]


@pytest.mark.slow
def test_reference_without_report_is_refused(models):  # noqa: F811
    reference = models / "reference.npz"
    result = run_compare(str(SAME[0]), "--test", str(OTHER), "--reference", str(reference))
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "only go into the HTML report" in line and "add --report" in line
    assert "LR =" not in result.stdout


@pytest.mark.slow
def test_bad_reference_fails_before_the_lr_is_computed(models, tmp_path):  # noqa: F811
    bad = tmp_path / "reference.npz"
    bad.write_text("target,nontarget\n1,2\n")
    report = tmp_path / "report.html"
    result = run_compare(
        str(SAME[0]), "--test", str(OTHER), "--report", str(report), "--reference", str(bad),
        *model_overrides(models),
    )  # fmt: skip
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"{bad}: cannot read reference LLRs as NPZ" in line
    assert "LR =" not in result.stdout and not report.exists()


def test_reference_arrays_must_be_numbers(tmp_path):
    path = tmp_path / "ref.npz"
    np.savez(path, target=np.array(["a", "b"]), nontarget=np.zeros(3))
    with pytest.raises(DataError, match="'target' must be a 1-D array of numbers"):
        load_reference_llrs(path)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="not an NPZ archive"):
        load_reference_llrs(single)
