"""What the scoring jobs share: how a job reads its dataset and where it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from balr.data import AudioDataset
from balr.data.dataset import DatasetReading
from balr.scoring.config import ScoreSettings


@dataclass(frozen=True)
class ScoringRun:
    """What `score train`, `test` and `matrix` run with: the scorer settings (None: the
    default config), the output folder (None: the command's default; an existing one
    becomes DIR2, DIR3, ... unless `exist_ok`, `balr.fileio.run_dir`), the vectors' folder
    (`binarize --save-dir`) and how the dataset is read."""

    settings: ScoreSettings | None = None
    save_dir: Path | None = None
    exist_ok: bool = False
    vectors_dir: Path | None = None
    reading: DatasetReading = field(default_factory=DatasetReading)

    def score_settings(self) -> ScoreSettings:
        """The settings given, else those of the default config."""
        return self.settings or ScoreSettings.from_overrides()

    def open_dataset(self, path: Path) -> AudioDataset:
        """The dataset at `path`, its vectors under `vectors_dir`."""
        return self.reading.open(path, self.vectors_dir)
