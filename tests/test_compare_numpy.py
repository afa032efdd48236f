"""`balr compare`'s torch-free chain (numpy GE2E + numpy BAE encoder) against the torch models
on the bundled clips: same embeddings (cosine >= 0.99999), identical bits, LLR within 1e-4,
same speech seconds and errors; and `balr compare` on the defaults imports neither torch nor
pandas."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from balr import defaults
from balr.binary_attributes.encoder_numpy import NumpyEncoder
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.compare import ComparisonPipeline, compare_config
from balr.compare.pipeline import build_compare_model
from balr.embeddings import EmbeddingModel, build_embedding_model
from balr.embeddings.ge2e_numpy import NumpyGE2E
from balr.embeddings.segments import ExtractionOptions
from balr.errors import AudioError
from tests.conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow  # both GE2E models on eight clips

CLIPS = sorted((EXAMPLES / "audio").glob("id*/*.flac"))


@pytest.fixture(scope="module")
def pipelines():
    """`(numpy, torch)` pipelines of the shipped models."""
    model_cfg = compare_config().embeddings.model
    fast = build_compare_model(model_cfg, None, numpy=True)
    slow = build_compare_model(model_cfg, "cpu", numpy=False)
    assert isinstance(fast, NumpyGE2E) and isinstance(slow, EmbeddingModel)
    return ComparisonPipeline.from_files(fast), ComparisonPipeline.from_files(slow)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_embeddings_bits_and_speech_equal_the_torch_models(pipelines):
    fast, slow = pipelines
    assert len(CLIPS) == 8
    ours, our_speech = fast.embed_with_speech(CLIPS)
    theirs, their_speech = slow.embed_with_speech(CLIPS)
    assert ours.dtype == np.float32 and ours.shape == (8, 256)
    assert _cosines(ours, theirs).min() >= 0.99999
    assert our_speech == their_speech
    assert isinstance(fast.encoder, NumpyEncoder)
    assert isinstance(slow.encoder, NumpyEncoder)  # the encoder is numpy for both
    torch_encoder = BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT)
    np.testing.assert_array_equal(fast.encoder.binarize(ours), torch_encoder.binarize(ours))
    np.testing.assert_array_equal(fast.encoder.binarize(ours), torch_encoder.binarize(theirs))


def test_llr_and_bits_of_a_comparison_equal_the_torch_chain(pipelines):
    fast, slow = pipelines
    slow.encoder = BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT)
    for enrollment, test in ((CLIPS[0], CLIPS[1]), (CLIPS[0], CLIPS[-1])):
        ours, theirs = fast.compare([enrollment], [test]), slow.compare([enrollment], [test])
        np.testing.assert_array_equal(ours.enroll_counts, theirs.enroll_counts)
        np.testing.assert_array_equal(ours.test_counts, theirs.test_counts)
        assert abs(ours.llr - theirs.llr) <= 1e-4
        assert ours.llr != 0


def test_long_recordings_are_averaged_over_windows_as_in_the_batch_engine(pipelines):
    windows = ExtractionOptions(num_workers=0, batch_size=8, max_duration_s=2.0, window_s=1.5)
    results = []
    for pipeline in pipelines:
        pipeline.extraction = windows
        results.append(pipeline.embed_with_speech(CLIPS[:3]))
    (ours, our_speech), (theirs, their_speech) = results
    assert _cosines(ours, theirs).min() >= 0.99999
    assert our_speech == their_speech


def test_unusable_files_give_the_batch_engine_error(pipelines, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, np.full(800, 0.1, dtype=np.float32), 16000)  # 0.05 s
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    for path in (short, silent):
        messages = []
        for pipeline in pipelines:
            pipeline.extraction = ExtractionOptions(num_workers=0, batch_size=8)
            with pytest.raises(AudioError) as caught:
                pipeline.embed_with_speech([CLIPS[0], path])
            messages.append(str(caught.value))
        assert messages[0] == messages[1]
        assert str(path) in messages[0]


def test_other_models_devices_and_pt_weights_use_torch(tmp_path):
    model_cfg = compare_config().embeddings.model
    assert isinstance(build_compare_model(model_cfg, "cpu", numpy=True), NumpyGE2E)
    pt_weights = compare_config([f"embeddings.model.weights={tmp_path / 'ge2e.pt'}"])
    with pytest.raises(Exception, match="ge2e.pt"):  # the torch loader's one-line error
        build_compare_model(pt_weights.embeddings.model, None, numpy=True)
    model = build_embedding_model(model_cfg)
    assert not isinstance(model, NumpyGE2E)


# `balr compare` on two bundled clips, in a fresh interpreter; prints the heavy modules loaded
PROBE = """
import contextlib, io, json, sys
from balr.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(["compare", sys.argv[1], "--test", sys.argv[2]])
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
assert "LR = " in out.getvalue(), out.getvalue()
print(json.dumps(sorted(m for m in ("torch", "pandas", "scipy") if m in sys.modules)))
"""


def test_compare_on_the_defaults_imports_no_torch_nor_pandas():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(CLIPS[0]), str(CLIPS[-1])],
        capture_output=True, text=True, timeout=240, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    heavy = json.loads(result.stdout.strip().splitlines()[-1])
    assert "torch" not in heavy and "pandas" not in heavy
