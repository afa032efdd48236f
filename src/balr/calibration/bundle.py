"""The calibration.json bundle: a calibrator and the description of its conditions, saved
and loaded together so that no saving order can lose either part.

Format (plain JSON, 2-space indent, keys in this order):

    {"calibrator": {<Calibrator.to_dict()>},
     "conditions": {<ConditionsDescription.to_dict()>},   # only with a description
     "population": {"source", "n_recordings", "n_speakers", "sha256"}}   # only when the
                                  # scores were adapted to a population (`balr.population`)

and, with a description, its reference vectors in `<stem>.conditions.safetensors` beside
it (named by `conditions.reference_vectors`). A file without `conditions` is a calibration
without a description. Every field is checked when loaded (`Calibrator.from_dict`,
`ConditionsDescription.from_dict`): a malformed file is a one-line `ModelError` naming the
file and the field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from balr.calibration.base import Calibrator
from balr.conditions import ConditionsDescription, sidecar_path
from balr.errors import ModelError
from balr.fileio import atomic_write_text, read_json_object
from balr.population import check_calibration_record

#: what messages call the file
CALIBRATION_FILE = "calibration file"


@dataclass(frozen=True)
class CalibrationBundle:
    """A fitted calibrator and, optionally, the description of its calibration conditions
    and the population its scores were adapted to (`balr.population.calibration_record`)."""

    calibrator: Calibrator
    conditions: ConditionsDescription | None = None
    population: dict | None = None

    def save(self, path: str | os.PathLike) -> Path:
        """Write calibration.json (and the conditions' reference vectors beside it), each
        atomically; the path of calibration.json."""
        path = Path(path)
        self.calibrator.check_fitted()
        record = {"calibrator": self.calibrator.to_dict()}
        if self.conditions is not None:
            sidecar = self.conditions.write_vectors(sidecar_path(path))
            record["conditions"] = self.conditions.to_dict(sidecar.name)
        if self.population is not None:
            record["population"] = self.population
        atomic_write_text(path, json.dumps(record, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CalibrationBundle:
        """Both parts of a calibration.json, every field checked."""
        record = read_json_object(path, CALIBRATION_FILE)
        population = record.get("population")
        return cls(
            _calibrator_of(record, path),
            ConditionsDescription.from_file_record(record, path),
            None if population is None else check_calibration_record(population, path),
        )


def read_calibrator(path: str | os.PathLike) -> Calibrator:
    """The calibrator of a calibration.json (its conditions are not read)."""
    return _calibrator_of(read_json_object(path, CALIBRATION_FILE), path)


def _calibrator_of(record: dict, path: str | os.PathLike) -> Calibrator:
    if "calibrator" not in record:
        raise ModelError(f"{path}: not a balr calibration file (no 'calibrator' record)")
    return Calibrator.from_dict(record["calibrator"], path)
