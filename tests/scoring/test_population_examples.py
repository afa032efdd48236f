"""`--population` on the bundled example clips (4 speakers x 2 recordings, vectors extracted
with the shipped models): the examples alone are too small a population for themselves (one
error line naming the trial), the examples plus 24 generated recordings of 6 more speakers
are used with each trial's own speakers left out, and a calibration fitted on those scores
warns when applied without them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from balr.cli.main import main
from balr.data import AudioDataset
from tests.conftest import EXAMPLES

AUDIO = EXAMPLES / "audio"
META, TRIALS = AUDIO / "metadata.csv", AUDIO / "trials.tsv"


def balr(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code or 0


@pytest.fixture(scope="module")
def example_vectors(tmp_path_factory):
    """The examples' BA vectors, and pop.csv: the 8 examples plus 6 generated speakers x 4
    recordings (BA bits drawn at each speaker's rates) in the same vectors folder."""
    folder = tmp_path_factory.mktemp("examples")
    vectors = folder / "vectors"
    assert balr("extract", META, "--save-dir", vectors) == 0
    assert balr("binarize", META, "--save-dir", vectors) == 0
    n_attributes = AudioDataset.from_path(META, output_dir=vectors).stack_vectors("ba")[1].shape[1]
    rows = [(f"gen{s}/r{r}", f"gen{s}") for s in range(6) for r in range(4)]
    pd.DataFrame(rows, columns=["id", "speaker"]).to_csv(folder / "gen.csv", index=False)
    rng = np.random.default_rng(0)
    rates = np.where(rng.random((6, n_attributes)) < 0.3, 0.8, 0.1)
    generated = AudioDataset.from_path(folder / "gen.csv", output_dir=vectors)
    with generated.vector_writer("ba") as writer:
        for index, item in enumerate(generated.items):
            bits = rng.random(n_attributes) < rates[int(item.speaker[3:])]
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    examples = pd.read_csv(META)[["id", "speaker"]]
    pd.concat([examples, pd.DataFrame(rows, columns=["id", "speaker"])]).to_csv(
        folder / "pop.csv", index=False
    )
    return folder, vectors


@pytest.mark.slow
def test_the_examples_are_too_small_a_population_for_themselves(example_vectors, capsys):
    folder, vectors = example_vectors
    code = balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population", META,
                "--save-dir", folder / "own")  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 1
    assert errors == [
        f"error: --population {META}: 4 recordings of 2 speakers for trial 2 (id00906/00014 vs "
        "id01184/00123) once its speakers and recordings are left out; at least 20 recordings "
        "of 5 or more other speakers are needed"
    ]


@pytest.mark.slow
def test_examples_with_other_speakers_calibrated_and_warned(example_vectors, capsys, caplog):
    folder, vectors = example_vectors
    pop = folder / "pop.csv"
    out = folder / "adapted"
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--population", pop,
                "--save-dir", out) == 0  # fmt: skip
    printed = " ".join(capsys.readouterr().out.split())
    assert f"adapted to the population {pop} (32 recordings, 10 speakers; 28-30 per trial" in (
        printed
    )
    scores = pd.read_csv(out / "scores.csv", sep="\t")
    same = scores["enrollment"].str[:7] == scores["test"].str[:7]
    assert list(scores["population_recordings"]) == list(np.where(same, 30, 28))
    assert list(scores["population_speakers"]) == list(np.where(same, 9, 8))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["population"]["per_trial"]["min_recordings"] == 28
    assert balr("score", "calibrate", out / "scores.csv", META, "--vectors-dir", vectors,
                "--population", pop, "--no-conditions") == 0  # fmt: skip
    assert json.loads((out / "calibration.json").read_text())["population"]["n_recordings"] == 32
    caplog.clear()
    assert balr("score", "test", META, TRIALS, "--vectors-dir", vectors, "--calibration",
                out / "calibration.json", "--save-dir", folder / "none") == 0  # fmt: skip
    warned = [r.getMessage() for r in caplog.records if "fitted on scores" in r.getMessage()]
    assert len(warned) == 1 and "these scores to none" in warned[0]
