"""The reference's top-level run keys as overrides: the command line's options win."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from balr.cli.options import run_options
from balr.fileio import run_dir


@pytest.mark.difference("BA-run-keys", "BA-model-dir-key")
def test_run_keys_are_taken_from_the_overrides_and_yield_to_options(caplog):
    overrides = [
        "input=ignored.csv",
        "save_output=false",
        "save_dir=out/vectors",
        "exist_ok=true",
        "audio_formats=[wav, flac]",
        "device='cuda:1'",
        "trainer.epochs=3",
    ]
    run = run_options(overrides)
    assert run.overrides == ["trainer.epochs=3"]
    assert (run.save_output, run.save_dir, run.exist_ok) == (False, Path("out/vectors"), True)
    assert (run.audio_formats, run.device) == (["wav", "flac"], "cuda:1")
    given = run_options(
        overrides,
        save_output=True,
        save_dir=Path("cli"),
        exist_ok=False,
        audio_formats=["mp3"],
        device="cpu",
    )
    assert (given.save_output, given.save_dir, given.exist_ok) == (True, Path("cli"), False)
    assert (given.audio_formats, given.device) == (["mp3"], "cpu")
    with caplog.at_level(logging.WARNING):
        assert run_options(["+model_dir=models", "scorer=beta"]).overrides == ["scorer=beta"]
    assert "model_dir=models: ignored" in caplog.text


def test_defaults_are_the_references():
    run = run_options([])
    assert (run.save_output, run.save_dir, run.exist_ok, run.device) == (True, None, False, "cpu")


@pytest.mark.difference("BA-exist-ok")
def test_run_dir_increments_like_the_reference(tmp_path):
    base = tmp_path / "runs" / "train"
    assert run_dir(None, str(base)) == base
    base.mkdir(parents=True)
    assert run_dir(None, str(base)) == tmp_path / "runs" / "train2"
    assert run_dir(None, str(base), exist_ok=True) == base
    (tmp_path / "runs" / "train2").mkdir()
    assert run_dir(base, "unused") == tmp_path / "runs" / "train3"


@pytest.mark.difference("BA-device")
def test_device_names_of_the_reference():
    """`cpu`; bare GPU numbers (`0`, `0,1`) mean `cuda:0`, `cuda:0,1`; checked for CUDA."""
    import pytest
    import torch

    from balr.distributed import resolve_device
    from balr.errors import ConfigError

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        for spec in ("0", "0,1", "cuda:0"):
            with pytest.raises(ConfigError, match=f"device 'cuda:{spec.removeprefix('cuda:')}'"):
                resolve_device(spec)
    with pytest.raises(ConfigError, match="expected cpu, cuda"):
        resolve_device("tpu")
