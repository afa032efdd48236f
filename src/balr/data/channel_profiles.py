"""Channel profiles of recordings: the `channel_profiles.tsv` file (id, absolute audio path,
then the 96 values of `balr.conditions.channel.channel_profile`, `%.3f`) that `balr extract`
writes beside `speech_durations.tsv`, from the audio it decodes anyway, and that
`balr score test` checks against the shipped calibration's channel reference
(`balr.conditions.jobs.trial_channel_check`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from balr.conditions.channel import PROFILE_BANDS, PROFILE_SIZE
from balr.data.recording_log import RecordingLog

CHANNEL_FILE = "channel_profiles.tsv"


class ChannelProfileLog(RecordingLog[np.ndarray]):
    """`channel_profiles.tsv`: a `RecordingLog` (crash-safe, resumable, one writer per
    folder) of each recording's channel profile; columns `shape01..32` (loud frames' band
    level minus their overall level, dB), `spread01..32` (their standard deviation) and
    `floor01..32` (10th-percentile band level minus the overall level)."""

    file_name: ClassVar[str] = CHANNEL_FILE
    value_columns: ClassVar[tuple[str, ...]] = tuple(
        f"{name}{band:02d}"
        for name in ("shape", "spread", "floor")
        for band in range(1, PROFILE_BANDS + 1)
    )

    @staticmethod
    def format_value(value: np.ndarray) -> str:
        return "\t".join(f"{v:.3f}" for v in np.asarray(value, dtype=np.float64).ravel())

    @staticmethod
    def parse_value(cells: list[str]) -> np.ndarray | None:
        if len(cells) != PROFILE_SIZE:
            return None
        try:
            profile = np.array(cells, dtype=np.float32)
        except ValueError:
            return None
        return profile if np.isfinite(profile).all() else None


def read_channel_profiles(folder: str | Path) -> dict[str, tuple[str, np.ndarray]] | None:
    """`{id: (audio path, profile)}` of the `channel_profiles.tsv` in `folder`, else in its
    records folder `folder/.balr` (with every rank's `channel_profiles.rankN.tsv` of a
    torchrun extraction); rows without 96 finite values are skipped; None when there is no
    such file."""
    return ChannelProfileLog.find(folder)
