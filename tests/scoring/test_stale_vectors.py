"""`score test` never reads an older packed store in place of vectors made since (issue 19)."""

import numpy as np
import pandas as pd
import torch
from typer.testing import CliRunner

from balr.binary_attributes.binarize import binarize_dataset
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.cli.main import app
from balr.data import AudioDataset
from tests.binary_attributes.conftest import clustered_embeddings, write_embedding_csv


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def score_test(data, trials, out) -> np.ndarray:
    run("score", "test", data, trials, "--save-dir", out, "scorer=cosine")
    return pd.read_csv(out / "scores.csv", sep="\t").scores.to_numpy()


def encoder(seed: int) -> BinaryAttributeEncoder:
    torch.manual_seed(seed)
    return BinaryAttributeEncoder(16, 64).eval()


def test_score_test_reads_ba_vectors_made_after_the_pack(tmp_path):
    """`vectors pack --kind ba`, then `binarize --force` with another encoder: `score test`
    kept reading the packed store, and its scores did not change."""
    x, labels = clustered_embeddings(2, 3, dim=16, seed=3)
    data = write_embedding_csv(tmp_path / "data", x, labels)
    ids = AudioDataset.from_path(data).ids
    trials = tmp_path / "trials.tsv"
    pd.DataFrame({"enrollment": ids[:3], "test": ids[3:]}).to_csv(trials, sep="\t", index=False)
    binarize_dataset(AudioDataset.from_path(data), encoder(0))
    run("vectors", "pack", data, "--kind", "ba")
    packed = score_test(data, trials, tmp_path / "s1")
    binarize_dataset(AudioDataset.from_path(data), encoder(1), force=True)
    after = score_test(data, trials, tmp_path / "s2")
    assert not np.allclose(after, packed)
    run("vectors", "pack", data, "--kind", "ba")  # the store holds the new vectors now
    np.testing.assert_allclose(score_test(data, trials, tmp_path / "s3"), after)
    # the reference's cosine of the new vectors: activation cosine x non-activation cosine
    counts = encoder(1).binarize(x).astype(np.float64)
    unit = counts / np.linalg.norm(counts, axis=1, keepdims=True)
    expected = (unit[:3] * unit[3:]).sum(axis=1).prod(axis=1)
    np.testing.assert_allclose(after, expected, atol=1e-9)


def test_score_test_does_not_score_the_old_ba_vector_of_a_now_invalid_embedding(tmp_path):
    """`binarize --force` over a NaN embedding left its old `_ba` file, and `score test`
    scored every trial with it."""
    x, labels = clustered_embeddings(2, 3, dim=16, seed=3)
    folder = tmp_path / "data"
    data = write_embedding_csv(folder, x, labels)
    ids = AudioDataset.from_path(data).ids
    trials = tmp_path / "trials.tsv"
    pd.DataFrame({"enrollment": ids[:3], "test": ids[3:]}).to_csv(trials, sep="\t", index=False)
    binarize_dataset(AudioDataset.from_path(data), encoder(0))
    assert np.isfinite(score_test(data, trials, tmp_path / "s1")).all()
    np.savetxt(folder / f"{ids[1]}_emb.txt", np.full(16, np.nan))
    report = binarize_dataset(AudioDataset.from_path(data), encoder(0), force=True)
    assert [b.item_id for b in report.bad] == [ids[1]]
    assert not (folder / f"{ids[1]}_ba.txt").exists()
    result = CliRunner().invoke(
        app, ["score", "test", str(data), str(trials), "--save-dir", str(tmp_path / "s2"),
              "scorer=cosine"]
    )  # fmt: skip
    if result.exit_code == 0:  # the trial is left unscored (NaN) and counted
        scores = pd.read_csv(tmp_path / "s2" / "scores.csv", sep="\t").scores.to_numpy()
        assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()
    else:  # or the run stops, naming the trial's recording
        assert ids[1] in result.output
