"""The manifest of the shipped models: it matches the files, a modified shipped file is
refused when picked by default and accepted when passed explicitly as the user's own."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from balr import defaults
from balr.calibration import Calibrator
from balr.cli.main import main
from balr.conditions import sidecar_path
from balr.errors import ModelError
from balr.scoring.selection import select_calibration, select_scorer
from tests.conftest import EXAMPLES

REBUILD = "rerun `python -c 'from balr.defaults import write_manifest; write_manifest()'`"


def test_the_manifest_lists_every_shipped_file_with_its_hash():
    listed = defaults.read_manifest()
    shipped = {
        path.relative_to(defaults.RESOURCES).as_posix()
        for path in defaults.RESOURCES.rglob("*")
        if path.is_file() and path != defaults.MANIFEST and not path.name.startswith(".")
    }
    assert set(listed) == shipped, REBUILD
    assert "defaults/calibration.json" in listed and "ge2e/ge2e.safetensors" in listed
    for name, digest in listed.items():
        assert defaults.sha256_file(defaults.RESOURCES / name) == digest, f"{name}: {REBUILD}"


def test_the_shipped_calibrations_name_their_data_and_recipe_not_a_build_folder():
    for path in (defaults.CALIBRATION, defaults.COSINE_CALIBRATION):
        text = Calibrator.load(path).description
        assert "/" + "work" not in text and "scores.csv" not in text, text
        for name in ("LibriSpeech", "speechocean762", "Common Voice", "recipes/default_models.sh"):
            assert name in text, (path.name, text)
    metrics = json.loads(defaults.METRICS.read_text())["calibration"]
    assert all("recipes/default_models.sh" in m["description"] for m in metrics.values())


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped calibration (and its conditions) copied into a resources folder of its
    own with its manifest; `defaults` points there. Returns the copied calibration.json."""
    folder = tmp_path / "resources" / "defaults"
    folder.mkdir(parents=True)
    for path in (defaults.CALIBRATION, sidecar_path(defaults.CALIBRATION)):
        shutil.copyfile(path, folder / path.name)
    resources = folder.parent
    monkeypatch.setattr(defaults, "RESOURCES", resources)
    monkeypatch.setattr(defaults, "MANIFEST", defaults.write_manifest(resources))
    monkeypatch.setattr(defaults, "CALIBRATION", folder / "calibration.json")
    return folder / "calibration.json"


def double_slope(path):
    record = json.loads(path.read_text())
    record["calibrator"]["slope"] = 2 * record["calibrator"]["slope"]
    path.write_text(json.dumps(record, indent=2))
    return record["calibrator"]["slope"]


def test_an_unmodified_shipped_calibration_is_used(shipped_copy):
    choice = select_calibration(select_scorer("beta"), quiet=True)
    assert choice.source == str(shipped_copy)
    assert choice.calibrator.slope_ == pytest.approx(0.11299904689107004)


def test_a_modified_shipped_calibration_is_refused_unless_passed_explicitly(shipped_copy):
    slope = double_slope(shipped_copy)
    with pytest.raises(ModelError) as error:
        select_calibration(select_scorer("beta"), quiet=True)
    message = str(error.value)
    assert f"({shipped_copy}) differs from the manifest manifest.json" in message
    assert "pass it explicitly with --calibration PATH to use it as your own model" in message
    assert "\n" not in message
    own = select_calibration(select_scorer("beta"), shipped_copy, quiet=True)
    assert own.calibrator.slope_ == pytest.approx(slope) and own.source == str(shipped_copy)


def test_a_modified_conditions_sidecar_is_refused_too(shipped_copy):
    sidecar = sidecar_path(shipped_copy)
    data = bytearray(sidecar.read_bytes())
    data[-1] ^= 0xFF
    sidecar.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"calibration of the beta scorer \(conditions\)"):
        select_calibration(select_scorer("beta"), quiet=True)


def test_score_test_with_a_modified_shipped_calibration_exits_1_with_one_line(
    shipped_copy, tmp_path, capsys
):
    double_slope(shipped_copy)
    args = ["score", "test", EXAMPLES / "audio" / "metadata.csv", EXAMPLES / "audio" / "trials.tsv"]
    with pytest.raises(SystemExit) as exit_info:
        main([*map(str, args), "--save-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs from the manifest" in err, err
    assert not (tmp_path / "run").exists()


def test_a_shipped_file_missing_from_the_manifest_is_refused(shipped_copy, monkeypatch):
    manifest = json.loads(defaults.MANIFEST.read_text())
    del manifest["files"]["defaults/calibration.json"]
    defaults.MANIFEST.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="is not in the manifest"):
        select_calibration(select_scorer("beta"), quiet=True)


def test_the_shipped_beta_scorer_and_encoder_pass_the_check():
    assert defaults.require(defaults.SCORER_CHECKPOINT, "scorer") == defaults.SCORER_CHECKPOINT
    assert defaults.checked(defaults.GE2E_WEIGHTS, "GE2E weights") == defaults.GE2E_WEIGHTS
    assert np.isfinite(Calibrator.load(defaults.CALIBRATION).slope_)
