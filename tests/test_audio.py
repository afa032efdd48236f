"""Audio decoding, resampling and the one-line errors, on the bundled example clips."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from balr.audio import audio_duration, load_audio, load_audio_with_rate
from balr.errors import AudioError
from tests.conftest import EXAMPLES

CLIP = EXAMPLES / "audio" / "id00906" / "00014.flac"  # 2.968 s of speech at 16 kHz


def test_24k_file_is_resampled_to_16k(tmp_path):
    speech, rate = sf.read(CLIP, dtype="float32")
    path = tmp_path / "speech_24k.wav"
    sf.write(path, soxr.resample(speech, rate, 24000), 24000)
    info = sf.info(str(path))
    assert info.samplerate == 24000
    wave = load_audio(path, 16000)
    # 24 kHz -> 16 kHz keeps the duration: 2/3 of the samples (soxr rounds to the nearest).
    assert abs(wave.shape[0] - info.frames * 2 / 3) <= 1
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.01 < np.abs(wave).max() <= 1.0


def test_native_rate_and_int16_scale():
    native, rate = load_audio_with_rate(CLIP)
    assert rate == 16000 and native.shape[0] == sf.info(str(CLIP)).frames
    scaled = load_audio(CLIP, 16000, int16_scale=True)
    np.testing.assert_allclose(scaled, native * 32768.0, rtol=1e-6)


def test_partial_read_matches_slice_of_full_read():
    full = load_audio(CLIP, None)
    part = load_audio(CLIP, None, offset_s=0.5, duration_s=1.0)
    np.testing.assert_array_equal(part, full[8000:24000])


def test_stereo_is_averaged(tmp_path):
    left = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    right = np.full(1600, 0.25, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 16000), (left + right) / 2, atol=1e-7)


def test_corrupt_file_error_names_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x01garbage that is not audio" * 10)
    with pytest.raises(AudioError, match=r"corrupt\.wav: cannot read audio"):
        load_audio(path)


def test_empty_and_zero_length_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: audio file is empty \(0 bytes\)"):
        load_audio(empty)
    silent = tmp_path / "zero.wav"
    sf.write(silent, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"zero\.wav: audio is empty \(0 samples\)"):
        load_audio(silent)


def test_missing_and_too_short(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(800, dtype=np.float32), 16000)  # 0.05 s
    with pytest.raises(AudioError, match=r"short\.wav: audio is too short \(0\.05 s < 0\.5 s\)"):
        load_audio(short, min_duration_s=0.5)


@pytest.mark.parametrize("extension, codec", [("m4a", "aac"), ("wma", "wmav2")])
@pytest.mark.difference("BA-audio-decoding")
def test_m4a_and_wma_are_decoded_with_ffmpeg(tmp_path, extension, codec):
    """libsndfile cannot read AAC or WMA; FFmpeg (PyAV) does. Encode a bundled clip, decode
    it back: the same signal up to the codec's delay and loss."""
    import av

    wave = load_audio(EXAMPLES / "audio" / "id00906" / "00014.flac", 16000)
    path = tmp_path / f"clip.{extension}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16000, layout="mono")
        stream.bit_rate = 64000
        frame = av.AudioFrame.from_ndarray(wave[None], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    decoded = load_audio(path, 16000)
    assert abs(len(decoded) - len(wave)) < 2048 and decoded.dtype == np.float32
    assert audio_duration(path) == pytest.approx(len(decoded) / 16000)
    window = 30000
    best = max(
        max(
            np.corrcoef(decoded[lag : lag + window], wave[:window])[0, 1],
            np.corrcoef(decoded[:window], wave[lag : lag + window])[0, 1],
        )
        for lag in range(0, 2048, 2)
    )
    assert best > 0.99
