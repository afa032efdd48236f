"""The audit record of `balr score test` (run.json) and `balr verify` on it."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from balr import __version__
from balr.audit import RUN_RECORD, file_entries, read_record
from balr.data import write_vector
from balr.errors import DataError
from balr.scoring.config import ScoreSettings
from balr.scoring.jobs import (
    CalibrationFit,
    ScoringRun,
    TrialScoring,
    calibrate_scores_file,
    score_trials_file,
    train_scorer,
)
from tests.scoring.conftest import N_SPEAKERS, balr_exit_code, score_test, scoring_with

#: the 9 test recordings of the generated corpus (each trial uses two of them)
TEST_IDS = [f"spk{s}/rec2" for s in range(N_SPEAKERS)]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scored(corpus, tmp_path):
    """A copy of the generated corpus, a beta scorer and a logistic calibration fitted on it,
    then `balr score test` with both; returns the copy's folder and the run's folder."""
    data = shutil.copytree(corpus, tmp_path / "corpus")
    vectors = data / "vectors"
    scorer = train_scorer(
        data / "train.csv",
        ScoringRun(
            save_dir=tmp_path / "scorer",
            vectors_dir=vectors,
            settings=ScoreSettings.from_overrides(["scorer=beta"]),
        ),
    ).path
    checkpoint = f"scorer.checkpoint_path={scorer}"
    raw = score_trials_file(
        data / "test.csv",
        data / "trials.tsv",
        TrialScoring(
            save_dir=tmp_path / "raw",
            vectors_dir=vectors,
            settings=ScoreSettings.from_overrides([checkpoint]),
            no_calibration=True,
        ),
    )
    calibration = tmp_path / "calibration.json"
    calibrate_scores_file(
        raw.save_dir / "scores.csv",
        data / "test.csv",
        CalibrationFit(out=calibration, describe_conditions=False),
    )
    run_dir = tmp_path / "run"
    args = ["--vectors-dir", vectors, "--save-dir", run_dir, "--calibration", calibration]
    assert score_test(data, *args, checkpoint) == 0
    return data, run_dir, scorer, calibration


def verify(target, capsys) -> tuple[int, list[str]]:
    return balr_exit_code("verify", target), capsys.readouterr().out.splitlines()


def test_score_test_records_its_inputs_models_version_and_command(scored, monkeypatch):
    data, run_dir, scorer, calibration = scored
    record = json.loads((run_dir / RUN_RECORD).read_text())
    assert record["balr_version"] == __version__
    assert record["command_line"][0] == sys.argv[0] and "time_utc" in record
    inputs = {(e["role"], e["path"]): e["sha256"] for e in record["inputs"]}
    vector_files = [data / "vectors" / f"{item}_ba.txt" for item in TEST_IDS]
    expected = {("dataset", str(data / "test.csv")), ("trials", str(data / "trials.tsv"))}
    expected |= {("ba vectors", str(path)) for path in vector_files}
    assert set(inputs) == expected
    for (_, path), digest in inputs.items():
        assert digest == sha256(type(data)(path))
    models = [(e["role"], e["path"], e["sha256"]) for e in record["models"]]
    assert models == [
        ("scorer", str(scorer), sha256(scorer)),
        ("calibration", str(calibration), sha256(calibration)),
    ]
    assert record["population"] == []


def test_verify_says_unchanged_then_exactly_which_file_changed_or_is_missing(scored, capsys):
    data, run_dir, scorer, _ = scored
    status, lines = verify(run_dir, capsys)
    assert status == 0 and lines[-1] == "13 unchanged, 0 changed, 0 missing"
    changed = data / "vectors" / "spk3" / "rec2_ba.txt"
    write_vector(changed, np.zeros((64, 2), np.float32))
    status, lines = verify(run_dir, capsys)
    assert status == 1 and lines[-1] == "12 unchanged, 1 changed, 0 missing"
    assert [line for line in lines if line.startswith("changed")] == [
        f"changed   inputs/ba vectors: {changed}"
    ]
    scorer.unlink()
    status, lines = verify(run_dir / RUN_RECORD, capsys)
    assert status == 1 and lines[-1] == "11 unchanged, 1 changed, 1 missing"
    assert f"missing   models/scorer: {scorer}" in lines


def test_verify_refuses_a_folder_without_record_or_a_malformed_one(tmp_path, capsys):
    assert balr_exit_code("verify", tmp_path) == 1
    assert f"{tmp_path}: no audit record" in capsys.readouterr().err
    (tmp_path / RUN_RECORD).write_text(json.dumps({"inputs": [{"path": 3}]}))
    with pytest.raises(DataError, match="'inputs' must be a list of"):
        read_record(tmp_path)


def test_file_entries_hash_each_file_once_and_skip_repeats(tmp_path, monkeypatch):
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(b"abc")
    second.write_bytes(b"")
    calls = []
    monkeypatch.setattr("balr.audit.sha256_file", lambda p: calls.append(p) or "h")
    hashed: dict[str, str] = {}
    entries = file_entries({"x": [first, first, None], "y": second}, hashed)
    entries += file_entries({"z": [first]}, hashed)
    assert [(e["role"], e["path"]) for e in entries] == [
        ("x", str(first)), ("y", str(second)), ("z", str(first))
    ]  # fmt: skip
    assert calls == [str(first), str(second)]
    with pytest.raises(DataError, match="cannot record the w: no such file"):
        file_entries({"w": tmp_path / "absent"})


def test_a_population_is_recorded_with_each_vector_file_it_used(
    channel_case,  # noqa: F811
    tmp_path,
):
    root, checkpoint = channel_case
    score_trials_file(
        root / "case.csv",
        root / "trials.tsv",
        scoring_with(checkpoint, root, tmp_path / "run", population=root / "pop.csv"),
    )
    record = read_record(tmp_path / "run")
    population = [(e["role"], e["path"]) for e in record["population"]]
    pop_ids = pd.read_csv(root / "pop.csv")["id"]
    assert population == [("population", str(root / "pop.csv"))] + [
        ("population ba vectors", str(root / "vectors" / f"{item}_ba.txt")) for item in pop_ids
    ]
    assert len(population) == 1 + 24
    for entry in record["population"]:
        assert entry["sha256"] == sha256(Path(entry["path"]))
    assert [e["role"] for e in record["models"]] == ["scorer"]
