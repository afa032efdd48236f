"""calibration.json checked when loaded: every damaged field is one line naming the file and
the field; the bundle round-trips exactly and the shipped files keep their bytes and LLRs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from balr import defaults
from balr.calibration import CalibrationBundle, Calibrator, make_calibrator
from balr.conditions import ConditionsDescription, sidecar_path
from balr.errors import ModelError
from tests.cli.test_main import run_balr
from tests.conftest import EXAMPLES, model_error

#: scores and (enrollment, test) speech seconds of five trials, and the LLRs the shipped qmf
#: calibration gave them before the calibration package (balr at da88934)
SCORES = np.array([-20.0, 0.0, 5.0, 12.5, 40.0])
SECONDS = np.array([[1.0, 2.0], [3.0, 8.0], [0.1, 20.0], [np.nan, 4.0], [5.0, 5.0]])
SHIPPED_LLRS = [-1.6405056566076985, -0.011581548674619774, 2.674672127014426]
SHIPPED_LLRS += [1.346485842250365, 3.5513864089984466]
COSINE_LLRS = [-4.5130667822683295, -4.5130667822683295, -4.5130667822683295, 6.568952215315253]


def shipped_copy(folder: Path) -> Path:
    """The shipped qmf calibration.json and its conditions sidecar, copied into `folder`."""
    target = folder / "calibration.json"
    shutil.copy(defaults.CALIBRATION, target)
    shutil.copy(sidecar_path(defaults.CALIBRATION), sidecar_path(target))
    return target


def edited(path: Path, part: str, edit: Callable[[dict], None]) -> Path:
    """`path` with `edit` applied to its `part` record (raw JSON, NaN allowed)."""
    record = json.loads(path.read_text())
    edit(record[part])
    path.write_text(json.dumps(record, indent=2))
    return path


def setter(key: str, value: object) -> Callable[[dict], None]:
    return lambda record: record.__setitem__(key, value)


def reversed_bounds(record: dict) -> None:
    record["lower_bound"], record["upper_bound"] = 3.91 * np.log(10), -3.91 * np.log(10)


CALIBRATOR_DAMAGE = {
    "negative slope": (setter("slope", -1.2), "field 'slope' must be positive, got -1.2"),
    "slope abc": (setter("slope", "abc"), "field 'slope' must be a number, got str 'abc'"),
    "slope null": (setter("slope", None), "field 'slope' must be a number, got null"),
    "slope NaN": (setter("slope", float("nan")), "field 'slope' must be finite, got nan"),
    "slope missing": (lambda r: r.pop("slope"), "field 'slope' is missing"),
    "reversed ELUB bounds": (reversed_bounds, "field 'lower_bound' must not exceed upper_bound"),
    "one bound only": (setter("upper_bound", None), "field 'upper_bound' must be a number"),
    "lower bound above 0": (setter("lower_bound", 0.5), "field 'lower_bound' must be <= 0"),
    "one duration coefficient": (
        setter("duration_coefs", [0.5]),
        "field 'duration_coefs' must have 2 items, has 1",
    ),
    "reversed duration range": (
        setter("log_duration_ranges", [[1.6, -0.4], [0.3, 2.0]]),
        "field 'log_duration_ranges[0]' must be [low, high] with low <= high",
    ),
    "zero speech floor": (setter("min_speech_s", 0), "field 'min_speech_s' must be positive"),
    "count as text": (setter("n_target", "5722"), "field 'n_target' must be a number"),
    "unknown method": (setter("method", "spline"), "field 'method' is 'spline'"),
    "knots in a qmf file": (setter("knots_x", [1.0]), "field 'knots_x' must be [] for a 'qmf'"),
    "renamed field": (
        lambda r: r.__setitem__("slop", r.pop("slope")),
        "not a balr calibration file (unexpected field(s) slop)",
    ),
}
CONDITIONS_DAMAGE = {
    "negative speech": (
        setter("speech_range_s", [-0.7, 7.3]),
        "field 'speech_range_s' must be positive",
    ),
    "reversed speech range": (
        setter("speech_range_s", [7.3, 0.7]),
        "field 'speech_range_s' must be [low, high] seconds",
    ),
    "threshold beyond a cosine": (
        setter("similarity_threshold", 2.5),
        "field 'similarity_threshold' must be a cosine in [-1, 1]",
    ),
    "unknown vector kind": (setter("vector_kind", "xyz"), "field 'vector_kind' is 'xyz'"),
    "no neighbours": (setter("neighbours", 0), "field 'neighbours' must be positive"),
    "more recordings than vectors": (
        setter("n_recordings", 1522),
        "field 'reference_vectors' has shape (1521, 512), expected (1522, *)",
    ),
    "percentile null": (
        setter("similarity_percentile", None),
        "field 'similarity_percentile' must be a number, got null",
    ),
}


#: (part of calibration.json, its own loader, damage) -> (edit, expected message)
FIELD_DAMAGE = {
    **{("calibrator", Calibrator.load, k): v for k, v in CALIBRATOR_DAMAGE.items()},
    **{("conditions", ConditionsDescription.load, k): v for k, v in CONDITIONS_DAMAGE.items()},
}


@pytest.mark.parametrize("case", FIELD_DAMAGE, ids=[f"{p}-{d}" for p, _, d in FIELD_DAMAGE])
def test_damaged_field_is_one_line_naming_file_and_field(tmp_path, case):
    """A damaged field of the calibrator or of the conditions description: one line naming
    the file (the conditions' sidecar when the damage is there) and the field."""
    part, load_part, _ = case
    edit, expected = FIELD_DAMAGE[case]
    path = edited(shipped_copy(tmp_path), part, edit)
    files = (path, sidecar_path(path)) if part == "conditions" else (path,)
    for load in (CalibrationBundle.load, load_part):
        message = model_error(load, path)
        assert expected in message, message
        assert message.startswith(tuple(f"{file}: " for file in files)), message


def test_truncated_files_are_one_line(tmp_path):
    path = shipped_copy(tmp_path)
    sidecar = sidecar_path(path)
    sidecar.write_bytes(sidecar.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"conditions\.safetensors: cannot read the reference"):
        CalibrationBundle.load(path)
    path.write_text(path.read_text()[:300])
    with pytest.raises(ModelError, match="calibration.json: not a balr calibration file"):
        Calibrator.load(path)


def test_pav_knots_must_be_monotone(tmp_path):
    rng = np.random.default_rng(3)
    scores, labels = (
        np.r_[rng.normal(2, 1, 300), rng.normal(-2, 1, 300)],
        np.r_[[1] * 300, [0] * 300],
    )
    path = make_calibrator("pav").fit(scores, labels).save(tmp_path / "calibration.json")
    knots = json.loads(path.read_text())["calibrator"]["knots_llr"]
    decreasing = [*knots[:-1], knots[-2] - 1.0]
    edited(path, "calibrator", setter("knots_llr", decreasing))
    with pytest.raises(ModelError, match="field 'knots_llr' must be non-decreasing"):
        Calibrator.load(path)
    edited(path, "calibrator", setter("knots_llr", knots[:-1]))
    with pytest.raises(ModelError, match=f"field 'knots_llr' must have {len(knots)} items"):
        Calibrator.load(path)


@pytest.mark.parametrize("method", ["logistic", "pav", "qmf"])
def test_bundle_round_trip_gives_identical_llrs_and_bytes(tmp_path, method):
    rng = np.random.default_rng(7)
    labels = np.r_[[1] * 400, [0] * 1600]
    scores = rng.normal(3.0 * labels - 1.0, 1.5)
    seconds = rng.uniform(1.0, 20.0, (len(labels), 2))
    groups = np.where(np.arange(len(labels)) % 3 == 0, "a", "b")
    calibrator = make_calibrator(method, description="round trip")
    calibrator.fit(scores, labels, seconds, groups)
    shipped = CalibrationBundle.load(defaults.CALIBRATION)
    path = CalibrationBundle(calibrator, shipped.conditions).save(tmp_path / "calibration.json")
    loaded = CalibrationBundle.load(path)
    assert type(loaded.calibrator) is type(calibrator)
    assert loaded.calibrator.get_params() == {"bounded": True, "description": "round trip"}
    probe = rng.normal(0, 3, 50)
    np.testing.assert_array_equal(
        loaded.calibrator.transform(probe, seconds[:50]), calibrator.transform(probe, seconds[:50])
    )
    again = CalibrationBundle(loaded.calibrator, loaded.conditions).save(tmp_path / "again.json")
    assert again.read_text() == path.read_text().replace(
        "calibration.conditions.safetensors", "again.conditions.safetensors"
    )


def test_shipped_calibrations_keep_their_bytes_and_llrs(tmp_path):
    bundle = CalibrationBundle.load(defaults.CALIBRATION)
    assert bundle.calibrator.transform(SCORES, SECONDS).tolist() == SHIPPED_LLRS
    saved = bundle.save(tmp_path / "calibration.json")
    assert saved.read_bytes() == defaults.CALIBRATION.read_bytes()
    assert sidecar_path(saved).read_bytes() == sidecar_path(defaults.CALIBRATION).read_bytes()
    cosine = Calibrator.load(defaults.COSINE_CALIBRATION)
    probe = np.array([-0.2, 0.1, 0.5, 0.9])
    assert cosine.transform(probe, SECONDS[:4]).tolist() == COSINE_LLRS


def test_saving_order_cannot_lose_a_part(tmp_path):
    """A calibrator saved alone writes a file without conditions; a description saved alone
    refuses a file holding a calibrator: only the bundle writes both."""
    bundle = CalibrationBundle.load(defaults.CALIBRATION)
    path = bundle.calibrator.save(tmp_path / "calibration.json")
    assert ConditionsDescription.load(path) is None
    with pytest.raises(ModelError, match="holds a calibrator"):
        bundle.conditions.save(path)
    assert Calibrator.load(path).to_dict() == bundle.calibrator.to_dict()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["negative slope", "reversed ELUB bounds"])
def test_score_test_refuses_a_tampered_calibration_in_one_line(tmp_path, damage):
    edit, expected = CALIBRATOR_DAMAGE[damage]
    path = edited(shipped_copy(tmp_path), "calibrator", edit)
    audio = EXAMPLES / "audio"
    result = run_balr(
        "score", "test", str(audio / "metadata.csv"), str(audio / "trials.tsv"),
        "--save-dir", str(tmp_path / "out"), "--calibration", str(path),
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {path}: {errors[0].split(': ', 2)[2]}"] and expected in errors[0]
    assert "Traceback" not in result.stderr
