"""`balr.audit` helpers: which files of a dataset folder or a model folder are recorded."""

from __future__ import annotations

from balr import defaults
from balr.audit import embedding_model_files, listed_files, scorer_file


def test_a_kaldi_dir_records_its_lists_and_an_audio_folder_none(tmp_path):
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    for name in ("wav.scp", "utt2spk", "notes.txt"):
        (kaldi / name).write_text("x\n")
    assert listed_files(kaldi) == [kaldi / "wav.scp", kaldi / "utt2spk"]
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.flac").write_bytes(b"fLaC")
    assert listed_files(audio) == [] and listed_files(kaldi / "notes.txt") == [kaldi / "notes.txt"]


def test_embedding_model_weights_are_the_files_its_config_names(tmp_path):
    assert embedding_model_files({"name": "ge2e", "weights": ""}) == [defaults.GE2E_WEIGHTS]
    own = tmp_path / "own.safetensors"
    own.write_bytes(b"0")
    assert embedding_model_files({"name": "ge2e", "weights": str(own)}) == [own]
    folder = tmp_path / "wespeaker"
    folder.mkdir()
    for name in ("config.yaml", "avg_model.pt"):
        (folder / name).write_text("x")
    model = {"name": "wespeaker", "model_dir": str(folder), "model_repo": "hub/id"}
    assert embedding_model_files(model) == [folder / "avg_model.pt", folder / "config.yaml"]
    assert embedding_model_files({"name": "doublemha", "checkpoint_path": ""}) == []


def test_a_scorer_run_folder_records_its_checkpoint(tmp_path):
    assert scorer_file(tmp_path) == tmp_path / "scorer.safetensors"
    assert scorer_file(tmp_path / "mine.pt") == tmp_path / "mine.pt" and scorer_file(None) is None
