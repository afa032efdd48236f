"""One inference path: `balr extractor embed`, the attention view and `balr extract
embeddings.model=doublemha` all embed through `balr.doublemha.inference`."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from balr.audio import load_audio
from balr.cli.main import app
from balr.data import AudioDataset
from balr.doublemha import SpeakerClassifier, embed_file, embed_waves
from balr.doublemha.config import ModelSettings
from balr.embeddings import build_embedding_model
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

CLIPS = EXAMPLES / "audio"
TINY = dict(front_end="VGG3L", kernel_size=8, heads_number=2, embedding_size=8)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    settings = ModelSettings(num_spkrs=3, pooling_method="DoubleMHA", **TINY)
    SpeakerClassifier(settings).eval().save(tmp_path / "best.pt")
    return tmp_path / "best.pt"


def test_cli_embed_attention_and_embedding_model(tmp_path, tiny_checkpoint):
    audio = CLIPS / "id01184" / "00133.flac"
    runner = CliRunner()
    result = runner.invoke(
        app, ["extractor", "embed", "--audio", str(audio), "--checkpoint", str(tiny_checkpoint)]
    )
    assert result.exit_code == 0, result.output
    printed = np.array(result.output.split(), dtype=np.float32)
    expected = embed_file(SpeakerClassifier.load(tiny_checkpoint), audio)
    np.testing.assert_allclose(printed, expected, atol=1e-5)
    args = ["extractor", "embed", "--audio", str(audio), "--checkpoint", str(tiny_checkpoint)]
    on_cpu = runner.invoke(app, [*args, "--device", "cpu"])  # the reference's option
    assert on_cpu.exit_code == 0 and on_cpu.output == result.output
    png = tmp_path / "att.png"
    result = runner.invoke(
        app,
        [
            "extractor",
            "attention",
            str(audio),
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.std() > 0.05
    model = build_embedding_model(
        type("Cfg", (), {"name": "doublemha", "checkpoint_path": str(tiny_checkpoint)})()
    )
    wave = torch.from_numpy(load_audio(audio))
    batch = torch.zeros(2, wave.shape[0])
    batch[0], batch[1, :32000] = wave, wave[:32000]
    vectors = model.embed(batch, torch.tensor([wave.shape[0], 32000]))
    assert vectors.shape == (2, 8)
    np.testing.assert_allclose(vectors[0].numpy(), expected, atol=1e-4)
    # the padded second row is the embedding of its first 2 s alone
    alone = embed_waves(model.extractor, wave[None, :32000])
    torch.testing.assert_close(vectors[1], alone[0], atol=1e-5, rtol=1e-5)


def test_extract_command_saves_the_extractor_embeddings(tmp_path, tiny_checkpoint):
    out = tmp_path / "vectors"
    args = [
        "extract",
        str(CLIPS / "metadata.csv"),
        "--save-dir",
        str(out),
        "embeddings.model=doublemha",
        f"embeddings.model.checkpoint_path={tiny_checkpoint.parent}",
        "embeddings.num_workers=0",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "doublemha: embedded 8" in result.output
    model = SpeakerClassifier.load(tiny_checkpoint)
    ds = AudioDataset.from_path(CLIPS / "metadata.csv", output_dir=out)
    indices, vectors = ds.stack_vectors("emb")
    assert len(indices) == 8
    for index, vector in zip(indices, vectors, strict=True):
        expected = embed_file(model, ds.items[index].audio)
        np.testing.assert_allclose(vector, expected, atol=1e-4)
