"""The DoubleMHA reference README's command lines, spelled as it spells them, through balr's
CLI on the bundled clips (as `.wav`, the format the reference assumes), paths aside:

    python scripts/featureExtractor -i files.lst
    python scripts/train.py [--train_labels_path ... --out_dir ...]
    python scripts/getEmbeddingExample.py --audioPath A --modelConfig C.pkl
        --modelCheckpoint M.chkpt

become `balr extractor features -i files.lst`, `balr extractor train --train_labels_path ...`
and `balr extractor embed --audioPath A --modelConfig C.pkl --modelCheckpoint M.chkpt`.
"""

import json
import pickle
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import soundfile
import torch

from balr.audio import load_audio
from balr.cli.main import main
from balr.doublemha import SpeakerClassifier, embed_file
from balr.doublemha.checkpoint import load_checkpoint
from balr.doublemha.data import list_item
from balr.doublemha.features import FeatureLoader, load_reference_features
from balr.errors import DataError
from tests.conftest import EXAMPLES
from tests.doublemha.test_features import reference_recipe_log_mel
from tests.doublemha.test_reference_checkpoint import (
    RunsCode,
    trained_looking_model,
    write_reference_run,
)

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

CLIPS = sorted((EXAMPLES / "audio").glob("id*/*.flac"))  # 4 speakers x 2 clips
TINY_FLAGS = [
    "--front_end", "VGG3L", "--kernel_size", "8", "--heads_number", "2",
    "--embedding_size", "8", "--window_size", "0.5", "--batch_size", "4",
    "--gradientAccumulation", "1", "--max_epochs", "1", "--validate_every", "1",
    "--print_every", "1", "--num_workers", "0", "--learning_rate", "0.001",
]  # fmt: skip


@pytest.fixture
def wav_corpus(tmp_path, monkeypatch, capsys):
    """The bundled clips as 16-bit `.wav` under `audiosPath/<speaker>/<clip>.wav`; the
    working directory is `tmp_path`, so list paths are relative as in the README."""
    monkeypatch.chdir(tmp_path)
    names = []
    for clip in CLIPS:
        name = f"audiosPath/{clip.parent.name}/{clip.stem}"
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(tmp_path / f"{name}.wav", load_audio(clip), 16000, subtype="PCM_16")
        names.append(name)
    return names


class Run(NamedTuple):
    status: int
    stdout: str
    stderr: str


def balr(args: list[str], capsys, ok: bool = True) -> Run:
    """`balr ARGS` through the console-script entry point (`balr.cli.main:main`)."""
    capsys.readouterr()
    try:
        main([str(arg) for arg in args])
        status = 0
    except SystemExit as exc:
        status = exc.code or 0
    out = capsys.readouterr()
    run = Run(status, out.out, out.err)
    if ok:
        assert run.status == 0, run.stdout + run.stderr
    return run


@pytest.mark.difference("DMHA-feature-extractor")
def test_feature_extractor_line(wav_corpus, tmp_path, capsys):
    """`featureExtractor -i files.lst`: one feature file beside each audio file, the
    reference's log-mel; lines may come without (README) or with (its code) the extension."""
    lines = [*wav_corpus[:-1], f"{wav_corpus[-1]}.wav"]
    (tmp_path / "files.lst").write_text("\n".join(lines) + "\n")
    result = balr(["extractor", "features", "-i", "files.lst"], capsys)
    assert "features: 8 written, 0 existing, 0 failed" in (result.stdout + result.stderr)
    for name in wav_corpus:
        feats = np.load(tmp_path / f"{name}.npy")
        wave, rate = soundfile.read(tmp_path / f"{name}.wav")
        expected = reference_recipe_log_mel(wave, rate)
        assert feats.dtype == np.float32 and feats.shape == expected.shape
        assert feats.shape == (1 + (len(wave) - 512) // 160, 80)
        assert np.abs(feats - expected).max() < 2e-3
    again = balr(["extractor", "features", "--audioFilesList", "files.lst"], capsys)
    assert "features: 0 written, 8 existing, 0 failed" in again.stdout
    neither = balr(["extractor", "features"], capsys, ok=False)
    assert neither.status == 2 and "SOURCE or -i FILES_LIST" in neither.stderr


def write_reference_lists(root: Path, names: list[str]) -> None:
    """The README's train labels (`path label -1`), clients and impostors (`pathA pathB`) of
    4 speakers x 2 recordings (consecutive names share a speaker)."""
    (root / "labels").mkdir()
    labels = [f"{name} {index // 2} -1" for index, name in enumerate(names)]
    (root / "labels/train.ndx").write_text("\n".join(labels) + "\n")
    clients = [f"{a} {b}" for a, b in zip(names[0::2], names[1::2], strict=True)]
    impostors = [f"{a} {b}" for a, b in zip(names[0::2], names[3::2], strict=False)]
    (root / "labels/clients.ndx").write_text("\n".join(clients) + "\n")
    (root / "labels/impostors.ndx").write_text("\n".join(impostors) + "\n")


def test_train_line_with_the_reference_flags(wav_corpus, tmp_path, capsys):
    """`train.py` with its README's files and flags: one epoch of a tiny model."""
    write_reference_lists(tmp_path, wav_corpus)
    args = [
        "extractor", "train",
        "--train_data_dir", ".", "--valid_data_dir", ".",
        "--train_labels_path", "labels/train.ndx", "--data_mode", "normal",
        "--valid_clients", "labels/clients.ndx", "--valid_impostors", "labels/impostors.ndx",
        "--out_dir", "models/model1", "--model_name", "CNN", "--randomSlicing",
        "--normalization", "cmn", "--pooling_method", "DoubleMHA", "--mask_prob", "0.3",
        "--scalingFactor", "30.0", "--marginFactor", "0.4", "--annealing",
        "--optimizer", "Adam", "--weight_decay", "0.001", "--early_stopping", "25",
        *TINY_FLAGS,
    ]  # fmt: skip
    result = balr(args, capsys)
    log = result.stdout + result.stderr
    assert "training on 8 recordings of 4 speakers; validating on 7 pairs" in log
    out = tmp_path / "models/model1"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["steps"], summary["epochs"]) == (2, 1)  # 8 clips / batch 4, one epoch
    assert len(summary["validations"]) == 2
    last = load_checkpoint(out / "last.pt")
    assert (last["step"], last["settings"]["num_spkrs"]) == (2, 4)
    model = SpeakerClassifier.load(out)  # best.pt
    assert (model.settings.kernel_size, model.settings.annealing) == (8, True)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes["pooling.mha.queries"] == (2, 40) and shapes["prediction_layer.weight"] == (4, 8)
    embed_args = ["extractor", "embed", "--audioPath", f"{wav_corpus[0]}.wav",
                  "--modelCheckpoint", "models/model1"]  # fmt: skip
    embedded = balr(embed_args, capsys)
    printed = np.array(embedded.stdout.split(), dtype=np.float32)
    np.testing.assert_allclose(printed, embed_file(model, f"{wav_corpus[0]}.wav"), atol=1e-5)


def test_train_line_on_the_reference_feature_pickles(tmp_path, monkeypatch, capsys):
    """The reference's feature script pickles `(80, T)` arrays beside the audio and its
    train.py reads `train_data_dir/path.pickle`: balr trains on those files (no audio
    present), read with an unpickler that rebuilds only arrays."""
    monkeypatch.chdir(tmp_path)
    names = []
    for clip in CLIPS:
        name = f"audiosPath/{clip.parent.name}/{clip.stem}"
        path = tmp_path / "feats" / f"{name}.pickle"
        path.parent.mkdir(parents=True, exist_ok=True)
        mfsc = reference_recipe_log_mel(load_audio(clip)).T.astype(np.float32)  # (80, T)
        path.write_bytes(pickle.dumps(mfsc, protocol=3))  # python 3.6's default protocol
        names.append(name)
    write_reference_lists(tmp_path, names)
    item = list_item("feats", names[0])
    stored = pickle.loads((tmp_path / "feats" / f"{names[0]}.pickle").read_bytes())
    np.testing.assert_array_equal(FeatureLoader(cache=False).raw(item), stored.T)
    args = [
        "extractor", "train", "--train_data_dir", "feats", "--valid_data_dir", "feats",
        "--train_labels_path", "labels/train.ndx", "--valid_clients", "labels/clients.ndx",
        "--valid_impostors", "labels/impostors.ndx", "--out_dir", "models/model1", *TINY_FLAGS,
    ]  # fmt: skip
    log = "".join(balr(args, capsys)[1:])
    assert "training on 8 recordings of 4 speakers; validating on 7 pairs" in log
    summary = json.loads((tmp_path / "models/model1/summary.json").read_text())
    assert (summary["steps"], summary["epochs"]) == (2, 1)
    assert not list((tmp_path / "feats").rglob("*.npy"))  # read, not converted


def test_a_feature_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "audio1.pickle"
    path.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(DataError, match="audio1.pickle: .*posix.system") as error:
        load_reference_features(path)
    assert "\n" not in str(error.value) and not marker.exists()
    path.write_bytes(pickle.dumps(np.zeros((40, 10), np.float32)))
    with pytest.raises(DataError, match=r"are \(80, frames\) arrays, got \(40, 10\)"):
        load_reference_features(path)


def test_train_line_without_flags_names_the_missing_data(tmp_path, monkeypatch, capsys):
    """`python scripts/train.py` alone trains on the reference site's own paths; balr has
    no such defaults and says which data to give (a documented difference)."""
    monkeypatch.chdir(tmp_path)
    result = balr(["extractor", "train"], capsys, ok=False)
    assert result.status == 1
    assert result.stderr.strip() == (
        "error: no training data: set train_labels_path=... or train_csv=..."
    )


@pytest.mark.parametrize("zip_format", [False, True], ids=["torch1.5-legacy", "zip"])
@pytest.mark.difference("DMHA-config-read", "DMHA-get-embedding")
def test_get_embedding_example_line(wav_corpus, tmp_path, zip_format, capsys):
    """`getEmbeddingExample.py --audioPath --modelConfig --modelCheckpoint`, on the files the
    reference's training writes: the printed embedding is the library's."""
    model = trained_looking_model()
    config, checkpoint = write_reference_run(tmp_path, model, zip_format)
    audio = f"{wav_corpus[2]}.wav"
    args = ["extractor", "embed", "--audioPath", audio, "--modelConfig", config.name,
            "--modelCheckpoint", checkpoint.name]  # fmt: skip
    result = balr(args, capsys)
    printed = np.array(result.stdout.split(), dtype=np.float32)
    assert printed.shape == (8,)
    np.testing.assert_allclose(printed, embed_file(model, audio), atol=1e-5)
    assert "warning" not in (result.stdout + result.stderr)
    on_cpu = balr([*args, "--device", "cpu"], capsys)
    assert on_cpu.stdout == result.stdout


def test_a_config_of_another_model_is_reported(wav_corpus, tmp_path, capsys):
    """The reference builds the model from the checkpoint's settings and never reads
    `--modelConfig`; balr does the same and says when the two disagree."""
    model = trained_looking_model()
    (tmp_path / "other").mkdir()
    other_config, _ = write_reference_run(
        tmp_path / "other", trained_looking_model(kernel_size=16), zip_format=True
    )
    _, checkpoint = write_reference_run(tmp_path, model, zip_format=True)
    audio = f"{wav_corpus[0]}.wav"
    args = ["extractor", "embed", "--audioPath", audio, "--modelConfig", other_config,
            "--modelCheckpoint", checkpoint]  # fmt: skip
    result = balr(args, capsys)
    assert "differs from the checkpoint in kernel_size (16 vs 8)" in result.stderr
    printed = np.array(result.stdout.split(), dtype=np.float32)
    np.testing.assert_allclose(printed, embed_file(model, audio), atol=1e-5)
    torch.testing.assert_close(  # the checkpoint's weights were used
        SpeakerClassifier.load(checkpoint).embedding_head[0].weight,
        model.embedding_head[0].weight,
    )
