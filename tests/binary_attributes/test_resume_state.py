"""A damaged or tampered BAE resume state is one ModelError line naming the file and field,
never a traceback (`trainer.resume=true`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from balr.errors import ModelError

from .test_trainer import data, fit  # noqa: F401 (the `data` fixture)

ONE_EPOCH = ("trainer.epochs=1", "trainer.losses=[mse, arcface]")


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory, data) -> Path:  # noqa: F811
    out_dir = tmp_path_factory.mktemp("bae") / "run"
    fit(out_dir, data, *ONE_EPOCH)
    return out_dir


def resume_error(run: Path, tmp_path: Path, data, damage) -> tuple[str, Path]:  # noqa: F811
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damaged = damage(copy)
    with pytest.raises(ModelError) as caught:
        fit(copy, data, "trainer.epochs=2", "trainer.losses=[mse, arcface]", "trainer.resume=true")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{damaged}: "), message
    return message.removeprefix(f"{damaged}: "), copy


def edit_state(change):
    def damage(run: Path) -> Path:
        path = run / "weights" / "last_state.pt"
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)
        return path

    return damage


def truncate(run: Path) -> Path:
    path = run / "weights" / "last_state.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def arcface_moment_nan(state: dict) -> None:
    entry = next(iter(state["optimizer"]["state"].values()))
    entry["exp_avg"].view(-1)[0] = float("nan")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (truncate, "cannot read the resume state"),
        (
            edit_state(lambda s: s.update(epoch=torch.tensor(float("nan")))),
            "field 'epoch' must be finite, got nan",
        ),
        (
            edit_state(lambda s: s.update(epoch=torch.tensor(-3))),
            "field 'epoch' must not be negative, got -3",
        ),
        (
            edit_state(lambda s: s.update(global_step=torch.tensor([1, 2]))),
            "field 'global_step' must be one number, has shape (2,)",
        ),
        (
            edit_state(lambda s: s.update(best_loss=torch.tensor(float("nan")))),
            "field 'best_loss' must be a number",
        ),
        (edit_state(lambda s: s.pop("optimizer")), "field 'optimizer' is missing"),
        (
            edit_state(lambda s: s["optimizer"].update(state=[1])),
            "field 'optimizer.state' must map each parameter to its moments",
        ),
        (edit_state(arcface_moment_nan), "field 'optimizer.state.0.exp_avg' holds 1 non-finite"),
        (edit_state(lambda s: s["losses"].clear()), "missing tensor(s) losses.arcface"),
        (
            edit_state(lambda s: s["optimizer"]["param_groups"][0]["params"].pop()),
            "field 'optimizer' does not fit",
        ),
    ],
    ids=[
        "truncated",
        "nan-epoch",
        "negative-epoch",
        "step-shape",
        "nan-best",
        "no-optimizer",
        "optimizer-state",
        "nan-moment",
        "no-loss-weights",
        "param-groups",
    ],
)
def test_tampered_resume_state_is_one_line(one_epoch_run, tmp_path, data, damage, words):  # noqa: F811
    message, _ = resume_error(one_epoch_run, tmp_path, data, damage)
    assert message.startswith(words), message


def test_nan_in_last_weights_is_one_line(one_epoch_run, tmp_path, data):  # noqa: F811
    from safetensors.torch import load_file, save_file

    def damage(run: Path) -> Path:
        path = run / "weights" / "last.safetensors"
        state = load_file(str(path))
        state["encoder.0.bias"][0] = float("inf")
        save_file(state, str(path))
        return path

    message, _ = resume_error(one_epoch_run, tmp_path, data, damage)
    assert message == "field 'encoder.0.bias' holds 1 non-finite value(s) (NaN or inf)"


def test_malformed_history_is_one_line(one_epoch_run, tmp_path, data):  # noqa: F811
    def damage(run: Path) -> Path:
        (run / "history.json").write_text('{"epoch": ')
        return run / "history.json"

    message, _ = resume_error(one_epoch_run, tmp_path, data, damage)
    assert message.startswith("cannot read the training history")
