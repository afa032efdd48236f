"""The channel profile and `ChannelReference` (balr.conditions.channel), and compare's
channel check with the shipped reference."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from balr import defaults
from balr.audio import load_audio, resample
from balr.calibration import CalibrationBundle
from balr.cli.main import app
from balr.conditions.channel import PROFILE_SIZE, ChannelReference, channel_profile
from balr.errors import DataError, ModelError
from tests.conftest import EXAMPLES

RATE = 16000
CLIP = EXAMPLES / "audio" / "id00906" / "00028.flac"
OTHER = EXAMPLES / "audio" / "id07531" / "00142.flac"


def band_edges() -> np.ndarray:
    """`(32, 2)` lowest and highest frequency (Hz) of each profile band's triangle."""
    from balr.conditions.channel import _filterbank

    bank = _filterbank()
    freqs = np.linspace(0, RATE / 2, bank.shape[0])
    return np.array([[freqs[w > 0].min(), freqs[w > 0].max()] for w in bank.T])


def band_limited(wave: np.ndarray, low: float, high: float, outside_db: float) -> np.ndarray:
    """`wave` with its spectrum outside [low, high] Hz scaled by `outside_db` (a brick wall)."""
    spectrum = np.fft.rfft(wave)
    freqs = np.fft.rfftfreq(len(wave), 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] *= 10 ** (outside_db / 20)
    return np.fft.irfft(spectrum, len(wave)).astype(np.float32)


def test_white_noise_has_a_flat_shape_and_no_spread_beyond_chance():
    noise = np.random.default_rng(0).normal(0, 0.1, 5 * RATE).astype(np.float32)
    profile = channel_profile(noise)
    assert profile.shape == (PROFILE_SIZE,) and profile.dtype == np.float32
    shape, spread, floor = profile[:32], profile[32:64], profile[64:]
    # area-normalised bands of a flat spectrum: equal mean power
    assert np.abs(shape[4:]).max() < 0.5
    # frame-to-frame spread: below one FFT bin's (exponential power: 10/ln 10 * pi/sqrt 6 =
    # 5.57 dB) and shrinking as the bands widen (more bins averaged)
    assert spread.max() < 5.57 and spread[-4:].max() < 1.5 < spread[8]
    # the 10th percentile of a band lies below its loud-frame mean
    assert (floor < shape).all()


def test_a_telephone_band_lowers_the_outside_bands_by_the_filter_gain():
    noise = np.random.default_rng(1).normal(0, 0.1, 5 * RATE).astype(np.float32)
    flat = channel_profile(noise)
    phone = channel_profile(band_limited(noise, 300, 3400, -40.0))
    edges = band_edges()
    inside = (edges[:, 0] >= 400) & (edges[:, 1] <= 3300)
    outside = edges[:, 0] >= 3600
    # the shape is relative to the level: outside minus inside drops by the filter's 40 dB
    drop = (phone[:32][outside] - phone[:32][inside].mean()) - (
        flat[:32][outside] - flat[:32][inside].mean()
    )
    np.testing.assert_allclose(drop, -40.0, atol=1.0)
    assert outside.sum() >= 7 and inside.sum() >= 6


def test_profile_resamples_and_refuses_too_short_audio():
    wave = load_audio(CLIP, RATE)
    at_8k = resample(wave, RATE, 8000)
    assert channel_profile(at_8k, 8000).shape == (PROFILE_SIZE,)
    with pytest.raises(DataError, match="at least 400"):
        channel_profile(np.zeros(100, np.float32))


def clustered_profiles(rng, n, centre):
    return centre + rng.normal(0, 1.0, (n, PROFILE_SIZE))


def test_reference_threshold_is_the_highest_corpus_percentile_and_flags_a_shifted_profile(tmp_path):
    rng = np.random.default_rng(0)
    tight = clustered_profiles(rng, 200, np.zeros(PROFILE_SIZE))
    loose = clustered_profiles(rng, 200, np.zeros(PROFILE_SIZE)) * 1.5
    profiles = np.r_[tight, loose]
    groups = ["tight"] * 200 + ["loose"] * 200
    reference = ChannelReference(neighbours=10, percentile=98.0).fit(profiles, groups)
    assert set(reference.group_thresholds_) == {"tight", "loose"}
    assert reference.threshold_ == reference.group_thresholds_["loose"]
    assert reference.group_thresholds_["tight"] < reference.group_thresholds_["loose"]
    # each corpus's own profiles: about 2 % beyond its own percentile, none beyond the max
    own = reference._distances(reference.profiles_.astype(float), np.eye(len(profiles), dtype=bool))
    assert (own[:200] > reference.group_thresholds_["tight"]).mean() == pytest.approx(
        0.02, abs=0.006
    )
    ok, distance = reference.check(np.zeros(PROFILE_SIZE))
    assert ok and distance < reference.threshold_
    shifted = np.zeros(PROFILE_SIZE)
    shifted[:32] = 10.0  # ten standard deviations in every shape value
    ok, distance = reference.check(shifted)
    assert not ok and distance > reference.threshold_
    assert reference.problem(shifted).startswith("channel unlike the calibration recordings' ")
    assert reference.problem(np.zeros(PROFILE_SIZE)) == ""
    # saved and read back: the same distances and thresholds
    loaded = ChannelReference.load(reference.save(tmp_path / "channel.safetensors"))
    assert loaded.group_thresholds_ == reference.group_thresholds_
    np.testing.assert_array_equal(loaded.distances(shifted), reference.distances(shifted))


def test_damaged_or_missing_reference_is_one_line_model_error(tmp_path):
    path = tmp_path / "channel.safetensors"
    with pytest.raises(ModelError, match="missing"):
        ChannelReference.load(path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot read the channel reference") as caught:
        ChannelReference.load(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="profiles"):
        ChannelReference().fit(np.zeros((5, PROFILE_SIZE)), ["a"] * 5)


def test_shipped_reference_reads_and_is_small():
    reference = ChannelReference.load(defaults.CHANNEL_REFERENCE)
    assert defaults.CHANNEL_REFERENCE.stat().st_size < 400_000
    assert set(reference.group_thresholds_) == {"commonvoice", "librispeech", "speechocean"}


def telephone_copy(path, folder) -> str:
    """The clip through a 300-3400 Hz band (60 dB down outside), resampled to 8 kHz."""
    wave = band_limited(load_audio(path, RATE), 300, 3400, -60.0)
    out = folder / f"phone_{path.stem}.wav"
    sf.write(out, resample(wave, RATE, 8000), 8000)
    return str(out)


@pytest.mark.slow
def test_compare_warns_on_a_telephone_channel_not_on_the_bundled_clips(tmp_path):
    from balr.compare import ComparisonPipeline, compare_config
    from balr.embeddings import build_embedding_model

    pipeline = ComparisonPipeline.from_files(
        build_embedding_model(compare_config().embeddings.model)
    )
    assert pipeline.channel is not None
    plain = pipeline.compare([CLIP], [OTHER])
    assert plain.in_conditions is True and plain.conditions_warning == ""
    phone = pipeline.compare([CLIP], [telephone_copy(OTHER, tmp_path)])
    assert phone.in_conditions is False
    assert "test recording's channel unlike the calibration recordings' (profile distance" in (
        phone.conditions_warning
    )
    both = pipeline.compare([telephone_copy(CLIP, tmp_path)], [telephone_copy(OTHER, tmp_path)])
    assert "enrollment recording's channel" in both.conditions_warning
    assert "test recording's channel" in both.conditions_warning


@pytest.mark.slow
def test_cli_shows_the_channel_reason_in_warning_report_and_audit(tmp_path):

    phone = telephone_copy(OTHER, tmp_path)
    report = tmp_path / "case.html"
    args = [str(CLIP), "--test", phone, "--report", str(report)]
    result = CliRunner().invoke(app, ["compare", *args])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    reason = "test recording's channel unlike the calibration recordings' (profile distance"
    assert "WARNING: outside the conditions of the calibration" in output and reason in output
    assert html.escape(reason) in report.read_text()
    audit = json.loads(report.with_suffix(".audit.json").read_text())
    assert any(reason in w for w in audit["warnings"])
    assert any(f.endswith("channel_reference.safetensors") for f in json.dumps(audit).split('"'))
    # a user calibration has no channel reference: no channel check
    user = tmp_path / "cal" / "calibration.json"
    user.parent.mkdir()
    shipped = CalibrationBundle.load(defaults.CALIBRATION)
    CalibrationBundle(shipped.calibrator, shipped.conditions).save(user)
    result = CliRunner().invoke(app, ["compare", *args, "--calibration", str(user)])
    assert result.exit_code == 0, result.output
    assert "channel unlike" not in " ".join(result.output.split())
