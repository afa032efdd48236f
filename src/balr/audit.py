"""The audit trail of a run: what it read, and whether those files are still the same.

An audit record holds the absolute path and SHA-256 of every file a run read (its inputs:
audio, or vectors and lists; its models; the population, when one is given), the balr
version, the command line and the UTC time. `balr score test` writes it as `run.json` beside
`scores.csv` / `metrics.json`; `balr compare --report R.html` puts it in the report (a table)
and writes it beside it (`R.audit.json`). `balr verify` (`verify_record`) hashes the files
again and says, for each, unchanged / changed / missing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from balr import __version__
from balr.errors import DataError
from balr.fileio import atomic_write_json, sha256_file

if TYPE_CHECKING:
    from balr.compare import Comparison
    from balr.data import AudioDataset
    from balr.scoring.selection import CalibrationChoice

RUN_RECORD = "run.json"  # in a `score test` run folder
REPORT_RECORD_SUFFIX = ".audit.json"  # beside a `compare` report: case.html -> case.audit.json
#: the groups of files a record lists, in order
SECTIONS = ("inputs", "models", "population")
STATUSES = ("unchanged", "changed", "missing")

Files = Mapping[str, Iterable[str | os.PathLike | None] | str | os.PathLike | None]


def file_entries(files: Files, hashed: dict[str, str] | None = None) -> list[dict[str, str]]:
    """`{role, path, sha256}` of every file of `files` (role -> path(s); None and repeats
    within a role are skipped), paths made absolute; each file is read once, even across
    roles and calls sharing `hashed` (absolute path -> SHA-256). A listed file that does not
    exist is a DataError."""
    hashed = {} if hashed is None else hashed
    entries = []
    for role, paths in files.items():
        seen = set()
        for path in [paths] if isinstance(paths, str | os.PathLike) else (paths or []):
            if path is None or os.path.abspath(path) in seen:
                continue
            absolute = os.path.abspath(path)
            seen.add(absolute)
            if absolute not in hashed:
                if not os.path.isfile(absolute):
                    raise DataError(f"{absolute}: cannot record the {role}: no such file")
                hashed[absolute] = sha256_file(absolute)
            entries.append({"role": role, "path": absolute, "sha256": hashed[absolute]})
    return entries


def audit_record(inputs: Files, models: Files, population: Files | None = None) -> dict:
    """The audit record of a run that read `inputs`, `models` and `population` (each: role
    -> path(s)), made now by this balr, from this command line."""
    hashed: dict[str, str] = {}
    return {
        "balr_version": __version__,
        "command_line": list(sys.argv),
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": file_entries(inputs, hashed),
        "models": file_entries(models, hashed),
        "population": file_entries(population or {}, hashed),
    }


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write the record as JSON (atomically) and return its path."""
    atomic_write_json(path, record)
    return Path(path)


def record_path(target: str | os.PathLike) -> Path:
    """Where the record of `target` is: a run folder's `run.json`, a report's `.audit.json`,
    or `target` itself when it is a JSON file."""
    target = Path(target)
    if target.is_dir():
        return target / RUN_RECORD
    return target if target.suffix == ".json" else report_record_path(target)


def read_record(target: str | os.PathLike) -> dict:
    """The audit record of a run folder, a report or a record file; DataError (one line,
    naming the file) when it is missing or malformed."""
    path = record_path(target)
    if not path.is_file():
        raise DataError(f"{target}: no audit record ({path} does not exist)")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a JSON audit record ({exc})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: not a JSON audit record (expected an object)")
    for section in SECTIONS:
        entries = record.get(section, [])
        if not isinstance(entries, list) or not all(_is_entry(e) for e in entries):
            raise DataError(f"{path}: '{section}' must be a list of {{role, path, sha256}}")
    return record


def _is_entry(entry: object) -> bool:
    return isinstance(entry, dict) and all(
        isinstance(entry.get(key), str) for key in ("role", "path", "sha256")
    )


@dataclass(frozen=True)
class Check:
    """One recorded file checked again: unchanged, changed or missing."""

    section: str
    role: str
    path: str
    status: str

    def line(self) -> str:
        return f"{self.status:<9} {self.section}/{self.role}: {self.path}"


def verify_record(record: dict) -> list[Check]:
    """Each file of the record hashed again (each distinct file once)."""
    checks, hashed = [], {}
    for section in SECTIONS:
        for entry in record.get(section, []):
            path = entry["path"]
            if path not in hashed:
                hashed[path] = sha256_file(path) if os.path.isfile(path) else None
            if hashed[path] is None:
                status = "missing"
            else:
                status = "unchanged" if hashed[path] == entry["sha256"] else "changed"
            checks.append(Check(section, entry["role"], path, status))
    return checks


def record_summary(record: dict) -> list[tuple[str, str]]:
    """`(label, value)` rows describing the run itself (version, command line, time, and
    each warning it gave)."""
    warnings = record.get("warnings", [])
    return [
        ("balr version", str(record.get("balr_version", "?"))),
        ("command line", " ".join(map(str, record.get("command_line", [])))),
        ("time (UTC)", str(record.get("time_utc", "?"))),
        *(("warning", str(w)) for w in warnings if isinstance(warnings, list)),
    ]


# ---------------------------------------------------------------------- what runs read

#: the speech durations `balr extract` writes in a vectors' folder (and one per torchrun rank)
SPEECH_FILES = "speech_durations*.tsv"


#: the lists of a Kaldi data dir that a dataset reads
KALDI_LISTS = ("wav.scp", "utt2spk")


def listed_files(path: str | os.PathLike) -> list[Path]:
    """A list file itself; for a folder, the lists of a Kaldi data dir in it (a folder of
    audio holds no list: the vectors read for its items are recorded)."""
    path = Path(path)
    return (
        [path / name for name in KALDI_LISTS if (path / name).is_file()]
        if path.is_dir()
        else [path]
    )


def folder_files(path: str | os.PathLike) -> list[Path]:
    """A file itself, or the files of a folder (a model folder: weights and config)."""
    path = Path(path)
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]


def score_inputs(
    dataset: AudioDataset,
    ids: Iterable[str],
    kind: str,
    lists: Mapping[str, str | os.PathLike],
    speech: str | os.PathLike | None = None,
) -> dict[str, list[Path]]:
    """What a scoring run read: its lists (role -> file or folder), the `kind` vector files
    of the items `ids` of `dataset`, and the speech durations (`speech`: the file given, else
    those found in the vectors' folder, `vectors_dir`, else the dataset's)."""
    inputs = {role: listed_files(path) for role, path in lists.items()}
    inputs[f"{kind} vectors"] = vector_files(dataset, ids, kind)
    folder = Path(dataset.output_dir or dataset.root)
    inputs["speech durations"] = [Path(speech)] if speech else sorted(folder.glob(SPEECH_FILES))
    return inputs


def scorer_file(checkpoint: str | os.PathLike | None) -> Path | None:
    """The file a scorer was read from (`scorer.checkpoint_path` may name its run folder)."""
    from balr.scoring.base import CHECKPOINT_NAME

    if checkpoint is None:
        return None
    return Path(checkpoint) / CHECKPOINT_NAME if Path(checkpoint).is_dir() else Path(checkpoint)


def vector_files(dataset: AudioDataset, ids: Iterable[str], kind: str) -> list[Path]:
    """The files the `kind` vectors of the items `ids` of `dataset` are read from."""
    return [file for item in ids for file in dataset.vector_files(dataset.index_of(item), kind)]


def population_files(
    dataset: AudioDataset, ids: Iterable[str], path: str | os.PathLike
) -> dict[str, list[Path]]:
    """What a population (`--population PATH`, the items `ids` of `dataset` that were
    used) was read from: its list and its BA vector files."""
    return {
        "population": listed_files(path),
        "population ba vectors": vector_files(dataset, ids, "ba"),
    }


def calibration_files(calibrated: CalibrationChoice) -> dict[str, list[Path]]:
    """Role -> files of the calibration applied: its calibration.json (`source`) and the
    conditions sidecar beside it, if any."""
    if calibrated.calibrator is None:
        return {}
    from balr.conditions import sidecar_path

    path = Path(calibrated.source)
    sidecar = [sidecar_path(path)] if sidecar_path(path).is_file() else []
    return {"calibration": [path], "calibration conditions": sidecar}


#: keys of an embedding model's config that name its weights (a file or a model folder)
WEIGHT_KEYS = ("weights", "checkpoint_path", "model_dir")


def embedding_model_files(model_cfg: Mapping) -> list[Path]:
    """The weights an embedding model config loads: the files its `WEIGHT_KEYS` name (a
    folder: the files in it), the shipped GE2E weights for a default GE2E."""
    from balr import defaults

    named = [str(model_cfg[key]) for key in WEIGHT_KEYS if model_cfg.get(key)]
    if not named and model_cfg.get("name") == defaults.EMBEDDING_MODEL:
        named = [str(defaults.GE2E_WEIGHTS)]
    return [file for name in named if Path(name).exists() for file in folder_files(name)]


def report_record_path(report: str | os.PathLike) -> Path:
    """The audit record written beside a `compare` report (case.html -> case.audit.json)."""
    return Path(report).with_suffix(REPORT_RECORD_SUFFIX)


def comparison_record(comparison: Comparison, reference: Path | None) -> dict:
    """The audit record of a `compare`: its enrollment and test audio, the models of its
    pipeline (`model_files`), the reference LLRs of its report and the warnings the
    comparison gave (`warnings`: the lines shown above its LR)."""
    inputs = {
        f"{side} audio": [recording.path for recording in getattr(comparison.result, side)]
        for side in ("enrollment", "test")
    }
    result = comparison.result
    models = comparison.pipeline.model_files | {"reference LLRs": reference}
    record = audit_record(inputs, models, result.population_files or None)
    record["warnings"] = [w for w in (result.conditions_warning, *result.warnings) if w]
    if result.population_adaptation is not None:
        record["population_adaptation"] = result.population_adaptation.record()
    if result.population_conditions is not None:
        record["population_conditions"] = result.population_conditions
    return record
