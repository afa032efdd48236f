"""A generated corpus with BA vectors, shared by the scoring CLI and job tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from balr.cli.main import main
from balr.data import AudioDataset

N_SPEAKERS, N_ATTRIBUTES = 9, 64


def balr_exit_code(*args: str | Path) -> int:
    """Run `balr ARGS` in this process; its exit code (0: success)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in args])
    return exit_info.value.code or 0


def score_test(data: Path, *args: str | Path) -> int:
    """The exit code of `balr score test DATA/test.csv DATA/trials.tsv ARGS`."""
    return balr_exit_code("score", "test", data / "test.csv", data / "trials.tsv", *args)


def scoring_with(checkpoint: Path, data: Path, save_dir: Path, kind=None, **options):
    """The options of a scoring job (`kind`, default `TrialScoring`) with the scorer at
    `checkpoint` (`scorer.checkpoint_path=...`) and the vectors in `data/vectors`."""
    from balr.scoring.config import ScoreSettings
    from balr.scoring.jobs import TrialScoring

    return (kind or TrialScoring)(
        settings=ScoreSettings.from_overrides([f"scorer.checkpoint_path={checkpoint}"]),
        save_dir=save_dir,
        vectors_dir=data / "vectors",
        **options,
    )


def recording(speaker: int, number: int) -> str:
    return f"spk{speaker}/rec{number}"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A reference set (2 recordings of each of 9 speakers), a test set (a 3rd recording of
    each) and their trials: the 9 test recordings against themselves (targets), then 9 pairs
    of different speakers. Each speaker has attributes at activation rate 0.9 (its profile,
    ~30 %) or 0.05, each recording draws its bits from its speaker's rates (generator seeded
    with 0); the BA vectors are written by the data layer into a separate vectors folder.
    Returns the folder (train.csv, test.csv, trials.tsv, vectors/)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rates = np.where(rng.random((N_SPEAKERS, N_ATTRIBUTES)) < 0.3, 0.9, 0.05)
    rows = [(recording(s, r), f"spk{s}") for s in range(N_SPEAKERS) for r in range(3)]
    frame = pd.DataFrame(rows, columns=["id", "speaker"])
    frame.to_csv(root / "all.csv", index=False)
    frame[~frame.id.str.endswith("rec2")].to_csv(root / "train.csv", index=False)
    frame[frame.id.str.endswith("rec2")].to_csv(root / "test.csv", index=False)
    dataset = AudioDataset.from_path(root / "all.csv", output_dir=root / "vectors")
    with dataset.vector_writer("ba") as writer:
        for index, item in enumerate(dataset.items):
            bits = rng.random(N_ATTRIBUTES) < rates[int(item.speaker[3:])]
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    same = [(recording(s, 2), recording(s, 2)) for s in range(N_SPEAKERS)]
    other = [(recording(s, 2), recording((s + 4) % N_SPEAKERS, 2)) for s in range(N_SPEAKERS)]
    trials = pd.DataFrame(same + other, columns=["enrollment", "test"])
    trials.to_csv(root / "trials.tsv", sep="\t", index=False)
    return root
