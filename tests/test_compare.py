"""`balr compare`: argument split, exact additivity of the explanation, report, errors."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
import soundfile as sf
import torch

from balr import defaults
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.calibration import make_calibrator
from balr.cli.compare import split_compare_args
from balr.compare import Comparison, ComparisonPipeline, compare_config
from balr.embeddings import build_embedding_model
from balr.errors import AudioError, ConfigError
from balr.scoring import make_scorer
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

CLIPS = EXAMPLES / "audio"
SAME = (CLIPS / "id00906" / "00014.flac", CLIPS / "id00906" / "00028.flac")
OTHER = CLIPS / "id07531" / "00023.flac"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A random BAE, a beta scorer fitted on simulated counts, a logistic calibrator."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    BinaryAttributeEncoder(256, 512).eval().save(folder / "bae.safetensors")
    rng = np.random.default_rng(0)
    active = rng.binomial(4, rng.uniform(0.05, 0.6, size=(40, 512)))
    make_scorer("beta").fit(np.stack([active, 4 - active], -1).astype(float)).save(
        folder / "scorer.safetensors"
    )
    scores = np.r_[rng.normal(30, 20, 300), rng.normal(-30, 20, 3000)]
    labels = np.r_[np.ones(300), np.zeros(3000)]
    make_calibrator(bounded=False).fit(scores, labels).save(folder / "calibration.json")
    np.savez(
        folder / "reference.npz", target=rng.normal(3, 2, 50), nontarget=rng.normal(-3, 2, 500)
    )
    return folder


@pytest.fixture(scope="module")
def ge2e():
    """The default embedding model of `balr compare` (defaults.EMBEDDING_MODEL)."""
    model_config = compare_config().embeddings.model
    assert model_config.name == defaults.EMBEDDING_MODEL
    return build_embedding_model(model_config)


@pytest.fixture(scope="module")
def pipeline(models, ge2e):
    return ComparisonPipeline.from_files(
        ge2e, models / "bae.safetensors", models / "scorer.safetensors", models / "calibration.json"
    )


def test_shipped_pipeline_separates_the_example_pairs(ge2e):
    shipped = ComparisonPipeline.from_files(ge2e)  # every stage from balr/resources/defaults
    same = shipped.compare([SAME[0]], [SAME[1]])
    different = shipped.compare([SAME[0]], [OTHER])
    assert same.llr > 0 > different.llr
    assert shipped.calibrator is not None and shipped.calibrator.method == "qmf"
    # the explanation carries the attributes' typicality / drop-out in the reference population
    table = same.top_attributes(5)
    assert {"typicality", "dropout", "alpha_0", "alpha_1"} <= set(table.columns)
    assert table["typicality"].between(0, 1).all()


def test_split_arguments():
    enroll, test, overrides = split_compare_args(["a.wav", "b.wav", "--test", "c.wav", "x.y=1"])
    assert (enroll, test, overrides) == (["a.wav", "b.wav"], ["c.wav"], ["x.y=1"])
    with pytest.raises(ConfigError, match="missing --test"):
        split_compare_args(["a.wav", "b.wav"])


def test_contributions_sum_exactly_to_the_calibrated_llr(pipeline):
    result = pipeline.compare([SAME[0]], [SAME[1]])
    calibrator = pipeline.calibrator
    # llr = slope * sum(terms) + intercept, and each contribution is slope * term
    assert result.score == pytest.approx(result.terms.sum())
    assert result.llr == pytest.approx(calibrator.slope_ * result.score + calibrator.intercept_)
    assert result.contributions.sum() + result.offset == pytest.approx(result.llr)
    np.testing.assert_allclose(result.contributions, calibrator.slope_ * result.terms)
    # one recording per side: counts are single bits
    assert set(np.unique(result.enroll_counts.sum(axis=1))) == {1.0}
    table = result.top_attributes(3)
    assert len(table) <= 6 and set(table["towards"]) <= {"same", "different"}
    same_rows = table[table["towards"] == "same"]
    assert (same_rows["contribution"] > 0).all()
    assert same_rows["contribution"].is_monotonic_decreasing
    assert {"alpha_0", "alpha_1"} <= set(table.columns)
    assert result.enrollment[0].duration_s == pytest.approx(sf.info(str(SAME[0])).duration)


def test_several_recordings_per_side_are_summed(pipeline):
    one = pipeline.compare([SAME[0]], [OTHER])
    two = pipeline.compare(list(SAME), [OTHER])
    # the enrollment counts of two recordings are the sums of each recording's bits
    alone = pipeline.compare([SAME[1]], [OTHER])
    np.testing.assert_array_equal(two.enroll_counts, one.enroll_counts + alone.enroll_counts)
    assert two.enroll_counts.sum(axis=1).max() == 2.0


def test_recordings_with_one_file_name_keep_their_own_embeddings(pipeline, tmp_path):
    """`a/x.flac` vs `b/x.flac`: each side is embedded from its own file (balr 0.1 wrote both
    embeddings to one `x_emb.npy`, so two speakers compared as one and got a huge LR)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(SAME[0], tmp_path / "a" / "x.flac")
    shutil.copy(OTHER, tmp_path / "b" / "x.flac")
    renamed = pipeline.compare([tmp_path / "a" / "x.flac"], [tmp_path / "b" / "x.flac"])
    original = pipeline.compare([SAME[0]], [OTHER])
    assert renamed.llr == pytest.approx(original.llr)
    assert not np.array_equal(renamed.enroll_counts, renamed.test_counts)


def test_report_has_every_section_and_decodable_images(pipeline, models, tmp_path):
    comparison = Comparison(pipeline, pipeline.compare([SAME[0]], [SAME[1]]))
    path = comparison.write_report(tmp_path / "report.html", 5, models / "reference.npz")
    html = path.read_text()
    for section in (
        "Inputs",
        "Result",
        "Attribute contributions",
        "Where this LR falls in the reference population",
        "Models and reference population",
    ):
        assert f"<h2>{section}</h2>" in html
    assert "00014.flac" in html and "ENFSI verbal scale" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert "Among 500 different-speaker reference comparisons" in html  # the --reference NPZ
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) == 2
    for data in images:
        pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300


def test_unreadable_and_too_short_audio_are_clear_errors(pipeline, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really audio" * 20)
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot read audio"):
        pipeline.compare([corrupt], [OTHER])
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).normal(0, 0.1, 3200).astype(np.float32), 16000)
    with pytest.raises(AudioError, match=r"short\.wav: too short \(0\.20 s"):
        pipeline.compare([SAME[0]], [short])
    with pytest.raises(AudioError, match=r"missing\.wav: audio file not found"):
        pipeline.compare([tmp_path / "missing.wav"], [OTHER])


def test_cli_writes_report_and_prints_verbal_scale(models, tmp_path):
    report = tmp_path / "out" / "report.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "balr.cli.main",
            "compare",
            str(SAME[0]),
            "--test",
            str(OTHER),
            "--report",
            str(report),
            "--reference",
            str(models / "reference.npz"),
            "--calibration",
            str(models / "calibration.json"),
            "--explain",
            "3",
            f"encoder.model.checkpoint_path={models / 'bae.safetensors'}",
            f"scorer.checkpoint_path={models / 'scorer.safetensors'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"LR = \S+ +log10 LR = -?\d+\.\d\d", result.stdout)
    assert "(ENFSI verbal scale)" in result.stdout
    assert report.is_file() and "<h2>Result</h2>" in report.read_text()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "balr.cli.main",
            "compare",
            str(tmp_path / "nope.wav"),
            "--test",
            str(OTHER),
            f"scorer.checkpoint_path={models / 'scorer.safetensors'}",
            f"encoder.model.checkpoint_path={models / 'bae.safetensors'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1
    assert [line for line in bad.stderr.splitlines() if line.strip()] == [
        f"error: {tmp_path / 'nope.wav'}: audio file not found"
    ]


@pytest.mark.parametrize("bounds", [None, (-0.1, 0.1)])
def test_qmf_explanation_lines_sum_exactly_to_the_llr(models, ge2e, bounds, tmp_path):
    """contributions (slope * term) + 'recording durations' (intercept + duration terms)
    + ELUB bounding = the calibrated ln LR, with and without clipping."""
    rng = np.random.default_rng(1)
    seconds = rng.uniform(1, 10, size=(4000, 2))
    labels = np.r_[np.ones(2000), np.zeros(2000)]
    scores = (
        np.where(labels == 1, 30.0, -30.0) + 5 * np.log(seconds.min(1)) + rng.normal(0, 20, 4000)
    )
    calibrator = make_calibrator("qmf", bounded=bounds is not None).fit(scores, labels, seconds)
    if bounds:
        calibrator.lower_bound_, calibrator.upper_bound_ = bounds
    calibrator.save(tmp_path / "qmf.json")
    pipeline = ComparisonPipeline.from_files(
        ge2e, models / "bae.safetensors", models / "scorer.safetensors", tmp_path / "qmf.json"
    )
    result = pipeline.compare([SAME[0]], [OTHER])
    lines = dict(result.llr_lines())
    assert sum(lines.values()) == pytest.approx(result.llr, abs=1e-12)
    np.testing.assert_allclose(result.contributions, calibrator.slope_ * result.terms)
    speech = [result.enrollment[0].speech_s, result.test[0].speech_s]
    expected_offset = calibrator.parts(np.zeros(1), np.array([speech])).offset[0]
    assert lines["recording durations"] == pytest.approx(expected_offset)
    if bounds:
        assert "bounded by calibration data (ELUB)" in lines and abs(result.llr) == 0.1
    else:
        assert result.bounding == 0 and len(lines) == 2
    assert result.in_conditions is False  # this calibration has no conditions description
