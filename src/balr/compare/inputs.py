"""Checks of a comparison's inputs before any model runs, and the same-recording warning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from balr.audio import check_audio_path
from balr.errors import AudioError, ConfigError
from balr.fileio import sha256_file


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
    """One warning per test file that is an enrollment file too: the same resolved path, or
    byte-identical content (a copy). A recording compared with itself is no evidence."""
    key = {}
    for path in enrollment:
        key.setdefault(Path(path).resolve(), path)
        key.setdefault(sha256_file(path), path)
    warnings = []
    for path in test:
        resolved = Path(path).resolve()
        twin, how = key.get(resolved), "the same file"
        if twin is None:
            twin, how = key.get(sha256_file(path)), "identical audio content"
        if twin is not None:
            warnings.append(
                f"enrollment {twin} and test {path} are the same recording ({how}): a "
                "recording compared with itself is no evidence about the speaker; do not "
                "report this LR"
            )
    return warnings
