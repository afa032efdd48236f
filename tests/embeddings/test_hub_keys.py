"""The reference's hub keys under any embedding model: one clear message, never Hydra's
"Could not override", and nothing extracted."""

from __future__ import annotations

import pytest

from balr.cli.main import main
from balr.embeddings.base import build_embedding_model
from balr.embeddings.extract import extract_config
from balr.errors import ConfigError, ModelError
from balr.hub_keys import HUB_MESSAGE
from tests.conftest import EXAMPLES


@pytest.mark.parametrize(
    "overrides",
    [
        ["embeddings.model.model_repo=Wespeaker/wespeaker-voxceleb-resnet34-LM"],  # default ge2e
        ["embeddings.model.model_name=avg_model"],
        ["+embeddings.model.config_name=config.yaml"],  # the reference's `+` form
        ["embeddings.model=doublemha", "embeddings.model.model_repo=org/model"],
    ],
)
@pytest.mark.difference("BA-model-repo")
def test_hub_keys_under_other_models_give_the_one_message(overrides):
    with pytest.raises(ConfigError) as error:
        extract_config(overrides)
    message = str(error.value)
    key = overrides[-1].lstrip("+").split("=", 1)[0]
    assert message.startswith(f"{key}=") and HUB_MESSAGE in message, message
    assert "Could not override" not in message


@pytest.mark.difference("BA-model-name", "BA-config-name")
def test_hub_keys_are_wespeaker_keys_there():
    cfg = extract_config(
        [
            "embeddings.model=wespeaker",
            "embeddings.model.model_name=other",
            "+embeddings.model.config_name=other.yaml",
        ]
    )
    assert cfg.embeddings.model.model_name == "other"
    assert cfg.embeddings.model.config_name == "other.yaml"
    # a hub id that is no local folder: the same message from the Wespeaker loader
    cfg = extract_config(["embeddings.model=wespeaker", "embeddings.model.model_repo=org/m"])
    with pytest.raises(ModelError, match=HUB_MESSAGE):
        build_embedding_model(cfg.embeddings.model)


def test_extract_with_a_hub_key_is_one_line_and_writes_nothing(tmp_path, capsys):
    audio = next(p for p in (EXAMPLES / "audio").rglob("*") if p.suffix in (".wav", ".flac"))
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "extract",
                str(audio),
                "--save-dir",
                str(tmp_path / "out"),
                "embeddings.model.model_repo=Wespeaker/wespeaker-voxceleb-resnet34-LM",
            ]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and HUB_MESSAGE in err, err
    assert not (tmp_path / "out").exists()
