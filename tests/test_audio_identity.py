"""Same-recording detection on decoded audio (`balr.audio_identity`): the decoded-samples
hash, near-duplicates of a bundled clip, different recordings of one speaker, and the
`compare` warning."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from balr.audio import load_audio
from balr.audio_identity import (
    IDENTICAL,
    NEAR_DUPLICATE,
    best_alignment,
    fingerprint,
    identify,
    identify_wave,
    same_recording,
    same_recording_files,
    similarity,
)
from balr.compare import same_recording_warnings
from tests.conftest import EXAMPLES

CLIP = EXAMPLES / "audio" / "id00906" / "00014.flac"
SAME_SPEAKER = EXAMPLES / "audio" / "id00906" / "00028.flac"
OTHER_SPEAKER = EXAMPLES / "audio" / "id01184" / "00123.flac"
SR = 16000


@pytest.fixture(scope="module")
def wave() -> np.ndarray:
    return load_audio(CLIP, SR)


def test_the_same_samples_in_another_container_hash_alike(wave, tmp_path):
    wav = tmp_path / "rewrapped.wav"
    sf.write(wav, wave, SR, subtype="PCM_16")  # the FLAC's own 16-bit samples, as WAV
    assert wav.read_bytes() != CLIP.read_bytes()
    original, rewrapped = identify(CLIP), identify(wav)
    assert rewrapped.sha256 == original.sha256
    assert same_recording(original, rewrapped).how == IDENTICAL
    edited = wave.copy()
    edited[1000] += 2**-15  # one 16-bit step on one sample
    assert identify_wave(edited).sha256 != original.sha256


@pytest.mark.parametrize(
    "edit, least",
    [
        (lambda w: np.concatenate([w[:999], [w[999] + 0.25], w[1000:]]), 0.95),
        (lambda w: w[int(0.010 * SR) :], 0.99),  # a 10 ms trim: one fingerprint frame
        (lambda w: w[int(0.007 * SR) :], 0.85),  # off the frame grid
        (lambda w: w[int(0.6 * SR) : -int(0.3 * SR)], 0.8),
        (lambda w: w * 0.25, 0.99),  # -12 dB
        # +18 dB: 1312 samples clipped (an unclipped x2 gain is exact in float32: the
        # fingerprints are then equal, similarity 1.0)
        (lambda w: np.clip(w * 8.0, -1.0, 1.0), 0.8),
    ],
    ids=["one-sample", "10ms-trim", "7ms-trim", "trim", "gain-12dB", "gain+18dB-clipped"],
)
def test_near_duplicates_are_found(wave, edit, least):
    verdict = same_recording(identify_wave(wave), identify_wave(edit(wave).astype(np.float32)))
    assert verdict is not None and verdict.how == NEAR_DUPLICATE
    # a trim on the fingerprint's frame grid leaves equal frames: a correlation of 1 up to
    # rounding, which the CPU's float path may round to exactly 1.0
    assert least <= verdict.similarity <= 1.0


@pytest.mark.parametrize("subtype", ["OPUS", "VORBIS"])
def test_a_lossy_re_encode_is_a_near_duplicate(wave, tmp_path, subtype):
    path = tmp_path / "reencoded.ogg"
    sf.write(path, wave, SR, format="OGG", subtype=subtype)
    verdict = same_recording(identify(CLIP), identify(path))
    assert verdict is not None and verdict.how == NEAR_DUPLICATE
    assert verdict.similarity > 0.8


def test_the_offset_of_a_trim_is_found(wave):
    value, offset = best_alignment(fingerprint(wave), fingerprint(wave[SR // 2 :]), 100)
    assert offset == 50 and value == pytest.approx(1.0, abs=1e-4)  # 0.5 s = 50 hops
    verdict = same_recording(identify_wave(wave[SR // 2 :]), identify_wave(wave))
    assert verdict.offset_s == pytest.approx(-0.5)


def test_different_recordings_are_not_flagged():
    clip, same_speaker, other = identify(CLIP), identify(SAME_SPEAKER), identify(OTHER_SPEAKER)
    assert same_recording(clip, same_speaker) is None
    assert same_recording(clip, other) is None
    assert similarity(clip, same_speaker) < 0.3 and similarity(clip, other) < 0.3


def test_silence_and_too_short_audio_are_not_one_recording():
    rng = np.random.default_rng(0)
    silence, noise = np.zeros(2 * SR, np.float32), rng.standard_normal(2 * SR) * 1e-6
    assert fingerprint(np.zeros(100, np.float32)).shape == (0, 16)
    assert same_recording(identify_wave(silence), identify_wave(noise.astype(np.float32))) is None
    assert similarity(identify_wave(silence[:100]), identify_wave(silence[:200])) == 0.0


def test_compare_warns_for_decoded_twins_and_near_duplicates(wave, tmp_path):
    wav, trimmed = tmp_path / "rewrapped.wav", tmp_path / "trimmed.wav"
    sf.write(wav, wave, SR, subtype="PCM_16")
    sf.write(trimmed, wave[int(0.010 * SR) :], SR, subtype="PCM_16")
    [decoded, near] = same_recording_warnings([SAME_SPEAKER, CLIP], [wav, OTHER_SPEAKER, trimmed])
    assert f"enrollment {CLIP} and test {wav} are the same recording" in decoded
    assert "(identical decoded audio at 16 kHz)" in decoded and "no evidence" in decoded
    assert f"test {trimmed}" in near and "near-duplicate: fingerprint correlation 1.00" in near
    assert "offset +0.01 s" in near
    assert same_recording_files([CLIP], [SAME_SPEAKER, OTHER_SPEAKER]) == []
