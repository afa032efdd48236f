"""What an extraction run did (`ExtractionReport`: counts, failures, speed) and its error
report, `extract_errors.tsv` (id, path, reason of each recording that was not embedded)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from balr.fileio import atomic_write_text

ERRORS_FILE = "extract_errors.tsv"


@dataclass
class ExtractionReport:
    """What a run did: counts, failures (id, path, reason) and audio/wall seconds."""

    total: int = 0
    skipped: int = 0
    succeeded: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    model: str = ""
    errors_path: Path | None = None
    speech_seconds: dict[str, float] = field(default_factory=dict)  # by id, embedded this run
    speech_path: Path | None = None
    profiles_path: Path | None = None  # channel_profiles.tsv

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio embedded per second of wall time."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self, where: str = "") -> str:
        """One line: counts, audio minutes, speed (`where`, e.g. " on rank 1/2", after the
        counts)."""
        return (
            f"{self.model}: embedded {self.succeeded}, skipped {self.skipped} existing, "
            f"failed {len(self.failures)} of {self.total} items{where} "
            f"({self.audio_seconds / 60:.1f} min of audio in {self.wall_seconds:.1f} s, "
            f"{self.real_time_factor:.0f}x real time)"
        )


def write_error_report(path: str | Path, failures: list[tuple[str, str, str]]) -> None:
    """Write `id, path, reason` rows as TSV (atomically); remove a stale report if none."""
    path = Path(path)
    if not failures:
        path.unlink(missing_ok=True)
        return
    buffer = io.StringIO()
    out = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    out.writerow(["id", "path", "reason"])
    out.writerows(failures)
    atomic_write_text(path, buffer.getvalue())
