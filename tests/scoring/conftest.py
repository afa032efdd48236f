"""A generated corpus with BA vectors, shared by the scoring CLI and job tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from balr.cli.main import main
from balr.data import AudioDataset

N_SPEAKERS, N_ATTRIBUTES = 9, 64
CHANNEL = np.arange(12)  # attributes every recording of the shared channel turns on


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


def _write_set(root, name, speakers, per_speaker, channel, rng, rates):
    """`name.csv` and BA vectors of `per_speaker` recordings of each of `speakers`."""
    rows = [(f"{name}/s{s}/r{r}", f"{name}{s}") for s in speakers for r in range(per_speaker)]
    pd.DataFrame(rows, columns=["id", "speaker"]).to_csv(root / f"{name}.csv", index=False)
    dataset = AudioDataset.from_path(root / f"{name}.csv", output_dir=root / "vectors")
    with dataset.vector_writer("ba") as writer:
        for index, item in enumerate(dataset.items):
            bits = rng.random(N_ATTRIBUTES) < rates[int(item.speaker[len(name) :])]
            if channel:
                bits[CHANNEL] = True
            writer.put(index, np.stack([bits, ~bits], axis=1).astype(np.float32))
    return rows


@pytest.fixture(scope="session")
def channel_case(tmp_path_factory):
    """A beta scorer fitted on 12 speakers of clean recordings; a case of 8 other speakers
    (2 recordings each) and a population of 6 more (4 each), all on one channel that turns
    on attributes 0-11 in every recording."""
    root = tmp_path_factory.mktemp("channel")
    rng = np.random.default_rng(1)
    rates = np.where(rng.random((26, N_ATTRIBUTES)) < 0.3, 0.9, 0.05)
    _write_set(root, "ref", range(12), 3, False, rng, rates)
    case = _write_set(root, "case", range(12, 20), 2, True, rng, rates)
    _write_set(root, "pop", range(20, 26), 4, True, rng, rates)
    ids = [i for i, _ in case]
    pairs = [(ids[2 * s], ids[2 * s + 1]) for s in range(8)]
    pairs += [(ids[2 * s], ids[(2 * s + 3) % 16]) for s in range(8)]
    pd.DataFrame(pairs, columns=["enrollment", "test"]).to_csv(
        root / "trials.tsv", sep="\t", index=False
    )
    from balr.scoring.config import ScoreSettings
    from balr.scoring.jobs import ScoringRun, train_scorer

    beta = ScoreSettings.from_overrides(["scorer=beta"])
    scorer = train_scorer(
        root / "ref.csv", ScoringRun(beta, root / "scorer", vectors_dir=root / "vectors")
    )
    return root, scorer.path
