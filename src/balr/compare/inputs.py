"""Checks of a comparison's inputs before any model runs, and the same-recording warning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from balr.audio import check_audio_path
from balr.audio_identity import same_recording_files
from balr.errors import AudioError, ConfigError


def check_explain(k: int) -> None:
    """ConfigError unless `k` (attributes listed each way) is a count >= 0."""
    if k < 0:
        raise ConfigError(f"--explain {k}: give the number of attributes to list (0 or more)")


def check_audio_files(paths: Sequence[str | Path]) -> None:
    """AudioError naming the first path that is missing or a directory."""
    for path in paths:
        if Path(path).is_dir():
            raise AudioError(
                f"{path}: is a directory; compare expects audio files (e.g. {path}/*.wav)"
            )
        check_audio_path(path)


def same_recording_warnings(
    enrollment: Sequence[str | Path], test: Sequence[str | Path]
) -> list[str]:
    """One warning per test file that is an enrollment file too: the same path, a copy, the
    same decoded samples or a near-duplicate (`balr.audio_identity`). A recording compared
    with itself is no evidence."""
    return [
        f"enrollment {same.enrollment} and test {same.test} are the same recording "
        f"({same.how}): a recording compared with itself is no evidence about the speaker; "
        "do not report this LR"
        for same in same_recording_files(enrollment, test)
    ]
