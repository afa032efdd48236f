"""Voice activity detection: long silences around real speech are dropped, pauses kept."""

from __future__ import annotations

import numpy as np
import pytest

from balr.audio import load_audio
from balr.embeddings.vad import apply_vad, speech_mask
from tests.conftest import EXAMPLES

SR = 16000


@pytest.fixture
def padded_speech():
    """2 s of faint noise, 2 s of real speech (a bundled VoxCeleb2 clip), 2 s of faint noise."""
    speech = load_audio(EXAMPLES / "audio" / "id01184" / "00133.flac", SR)[SR : 3 * SR]
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(2 * SR) * 1e-4).astype(np.float32)  # about -80 dBFS
    return np.concatenate([noise, speech, noise]), speech


def test_energy_vad_drops_silence_and_keeps_speech(padded_speech):
    wave, speech = padded_speech
    kept = apply_vad(wave, SR, "energy", keep_pause_s=0.2)
    # at most the 2 s of speech, one 30 ms frame (480 samples) straddling each edge, and
    # 2 x 7 frames of margin (keep_pause_s 0.2 s / 30 ms rounds to 7)
    assert len(speech) * 0.8 <= len(kept) <= len(speech) + (2 + 14) * 480
    mask = speech_mask(wave, SR, "energy")
    assert mask[2 * SR + SR // 2 : 3 * SR + SR // 2].all()  # middle of the speech is kept
    assert not mask[:SR].any() and not mask[-SR:].any()  # first and last second are dropped


def test_webrtc_vad_drops_silence(padded_speech):
    pytest.importorskip("webrtcvad", reason="webrtcvad-wheels provides the WebRTC detector")
    wave, speech = padded_speech
    kept = apply_vad(wave, SR, "webrtc")
    assert len(kept) < len(wave) - SR  # over 1 s of the 4 s of noise is gone
    assert len(kept) >= len(speech) * 0.7


def test_none_and_all_silent_return_the_input():
    wave = np.zeros(SR, np.float32)
    assert apply_vad(wave, SR, "none") is wave
    assert len(apply_vad(wave, SR, "energy")) == SR  # nothing detected: keep rather than lose
    with pytest.raises(ValueError, match="unknown VAD"):
        speech_mask(wave, SR, "magic")
