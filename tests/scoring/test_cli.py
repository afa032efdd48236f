"""CLI round trip on a generated corpus with BA vectors: score train / test / matrix."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from balr.cli.main import app
from balr.data import AudioDataset, load_trials
from balr.scoring import Scorer
from balr.scoring.trials import find_trial, trial_vectors
from tests.scoring.conftest import N_ATTRIBUTES, balr_exit_code, recording, score_test


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["beta", "maxllr", "dna", "speech"])
def test_train_then_test(name, corpus, tmp_path):
    model_dir = tmp_path / "model"
    extra = ["scorer.f=0.3", "scorer.n_iterations=30"] if name == "maxllr" else []
    run(
        "score",
        "train",
        corpus / "train.csv",
        "--save-dir",
        model_dir,
        "--vectors-dir",
        corpus / "vectors",
        f"scorer={name}",
        *extra,
    )
    checkpoint = model_dir / "scorer.safetensors"
    scorer = Scorer.load(checkpoint)
    assert scorer.name == name and scorer.n_attributes == N_ATTRIBUTES
    if name == "maxllr":
        assert scorer.f == 0.3 and scorer.n_iterations == 30
    assert (model_dir / "config.yaml").is_file()

    out = tmp_path / "test"
    result = run(
        "score",
        "test",
        corpus / "test.csv",
        corpus / "trials.tsv",
        "--save-dir",
        out,
        "--vectors-dir",
        corpus / "vectors",
        "--explain",
        "3",
        "--explain-plot",
        "1",
        "--keep-same-recording",  # the corpus's targets are its recordings against themselves
        f"scorer.checkpoint_path={checkpoint}",
    )
    assert "18 trials scored" in result.output
    assert "9 same-recording trials kept in EER and Cllr" in result.output
    trials = pd.read_csv(corpus / "trials.tsv", sep="\t")
    scores = pd.read_csv(out / "scores.csv", sep="\t")
    assert list(scores.columns) == ["enrollment", "test", "scores", "same_recording"]
    assert scores[["enrollment", "test"]].equals(trials)
    # the 9 first trials compare a recording with itself (targets), the 9 last two speakers
    assert scores.same_recording.tolist() == [True] * 9 + [False] * 9
    target, nontarget = scores.scores[:9], scores.scores[9:]
    assert target.min() > nontarget.max()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eer"] == 0.0 and metrics["n_target"] == 9 and metrics["n_nontarget"] == 9
    assert (metrics["n_same_recording"], metrics["same_recording_in_metrics"]) == (9, True)
    assert metrics["min_cllr"] < 0.05
    for png in ("det.png", "tippett.png", "explanation_trial1.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    explanations = pd.read_csv(out / "explanations.csv")
    assert len(explanations) == 18 * 2 * 3
    # each trial's top "same" attribute is its largest term; terms come from the saved scorer
    first = explanations[(explanations.trial == 10) & (explanations.direction == "same")]
    assert first.enrollment.iloc[0] == trials.enrollment[9]
    np.testing.assert_allclose(first.score.iloc[0], scores.scores[9])
    assert first.llr.is_monotonic_decreasing


@pytest.mark.slow
def test_matrix_and_cosine(corpus, tmp_path):
    out = tmp_path / "matrix"
    run(
        "score",
        "matrix",
        corpus / "test.csv",
        "--save-dir",
        out,
        "--vectors-dir",
        corpus / "vectors",
        "scorer=cosine",
    )
    matrix = np.load(out / "scores.npy")
    ids = (out / "ids.txt").read_text().split()
    assert matrix.shape == (9, 9) and len(ids) == 9
    np.testing.assert_allclose(np.diag(matrix), 1.0)  # a recording against itself
    assert np.all(matrix <= 1.0 + 1e-12)
    # the trial list's cosine scores are entries of the matrix
    run(
        "score",
        "test",
        corpus / "test.csv",
        corpus / "trials.tsv",
        "--save-dir",
        tmp_path / "t",
        "--vectors-dir",
        corpus / "vectors",
        "scorer=cosine",
    )
    scores = pd.read_csv(tmp_path / "t" / "scores.csv", sep="\t")
    row = scores.iloc[9]
    np.testing.assert_allclose(row.scores, matrix[ids.index(row.enrollment), ids.index(row.test)])


def test_unknown_speakers_are_scored_without_metrics(corpus, tmp_path):
    run(
        "score",
        "train",
        corpus / "train.csv",
        "--save-dir",
        tmp_path / "m",
        "--vectors-dir",
        corpus / "vectors",
    )  # default scorer: beta
    scorer = Scorer.load(tmp_path / "m")
    assert scorer.name == "beta"
    # a dataset without speakers whose vectors are given explicitly (the generated files)
    ids = [recording(0, 2), recording(0, 0), recording(0, 1), recording(1, 2)]
    paths = [corpus / "vectors" / f"{i}_ba.txt" for i in ids]
    pd.DataFrame({"id": ids, "binary_attributes": paths}).to_csv(tmp_path / "set.csv", index=False)
    trials = tmp_path / "trials.txt"  # no header, ';' separator, two recordings enrolled
    trials.write_text(f"{ids[1]},{ids[2]};{ids[0]}\n{ids[1]},{ids[2]};{ids[3]}\n")
    result = run(
        "score",
        "test",
        tmp_path / "set.csv",
        trials,
        "--sep",
        ";",
        "--save-dir",
        tmp_path / "out",
        f"scorer.checkpoint_path={tmp_path / 'm'}",
    )
    assert "no metrics" in result.output
    assert not (tmp_path / "out" / "metrics.json").exists()
    scores = pd.read_csv(tmp_path / "out" / "scores.csv", sep=";")
    vectors = [np.loadtxt(p) for p in paths]
    enrolled = (vectors[1] + vectors[2])[None]
    expected = scorer.score(np.repeat(enrolled, 2, 0), np.stack([vectors[0], vectors[3]]))
    np.testing.assert_allclose(scores.scores, expected, atol=1e-9)
    assert scores.scores[0] > scores.scores[1]  # same speaker above the other speaker


def test_errors_are_one_line(corpus, tmp_path, capsys):
    # beta and speech are shipped fitted; maxllr is not
    assert score_test(corpus, "scorer=maxllr") == 1
    assert "needs scorer.checkpoint_path" in capsys.readouterr().err
    assert balr_exit_code("score", "train", corpus / "train.csv", "--save-dir", tmp_path) == 1
    assert "has no binary-attribute vector" in capsys.readouterr().err
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text(f"enrollment\ttest\n{recording(0, 2)},{recording(1, 2)}\t{recording(2, 2)}\n")
    test_csv, vectors = corpus / "test.csv", corpus / "vectors"
    code = balr_exit_code(
        "score", "test", test_csv, mixed, "scorer=cosine", "--vectors-dir", vectors
    )
    assert code == 1
    assert "mixes speakers" in capsys.readouterr().err


def test_each_recording_read_once_and_missing_vectors_give_nan(tmp_path, monkeypatch):
    (tmp_path / "set.csv").write_text("id,speaker\na,s1\nb,s1\nc,s2\nd,s2\n")
    dataset = AudioDataset.from_path(tmp_path / "set.csv")
    with dataset.vector_writer("ba") as writer:
        for index in range(3):  # d has no vector
            bit = index % 2
            writer.put(index, np.array([[bit, 1 - bit], [1, 0]], dtype=np.float32))
    (tmp_path / "trials.tsv").write_text("a\tb\na\tc\nb,a\tc\nc\td\n")
    trials = load_trials(tmp_path / "trials.tsv")
    requested = []
    original = dataset.stack_vectors

    def spy(kind, indices=None, **kwargs):
        requested.append(list(indices))
        return original(kind, indices, **kwargs)

    monkeypatch.setattr(dataset, "stack_vectors", spy)
    vectors, cells, valid = trial_vectors(dataset, trials, "ba")
    assert requested == [[0, 1, 2, 3]]  # one read, each distinct recording once
    assert vectors.shape == (3, 2, 2)
    np.testing.assert_array_equal(valid, [True, True, True, False])
    assert [list(cells.enroll.cell(i)) for i in range(3)] == [[0], [0], [1, 0]]
    assert find_trial(trials, "b,a::c") == 2 and find_trial(trials, "4") == 3


@pytest.mark.slow
@pytest.mark.difference("BA-score-train", "BA-score-test")
def test_reference_run_dirs_exist_ok_and_device(corpus, tmp_path, monkeypatch):
    """The reference's folders (runs/scorer/train, runs/score, then ...2, ...3), kept with
    --exist-ok or `exist_ok=true`; --device is accepted (cpu) and checked."""
    monkeypatch.chdir(tmp_path)
    vectors = ["--vectors-dir", corpus / "vectors"]
    for _ in range(2):
        run("score", "train", corpus / "train.csv", *vectors, "--device", "cpu")
    runs = tmp_path / "runs"
    assert sorted(p.name for p in (runs / "scorer").iterdir()) == ["train", "train2"]
    run("score", "train", corpus / "train.csv", *vectors, "--exist-ok")
    run("score", "train", corpus / "train.csv", *vectors, "exist_ok=true")
    assert sorted(p.name for p in (runs / "scorer").iterdir()) == ["train", "train2"]

    checkpoint = f"scorer.checkpoint_path={runs / 'scorer' / 'train' / 'scorer.safetensors'}"
    test = ["score", "test", corpus / "test.csv", corpus / "trials.tsv", *vectors, checkpoint]
    run(*test, "--no-calibration", "--device", "cpu")
    run(*test, "--no-calibration", "--no-exist-ok")
    run(*test, "--no-calibration", "--exist-ok")
    assert sorted(p.name for p in runs.iterdir()) == ["score", "score2", "scorer"]
    assert (runs / "score2" / "scores.csv").is_file()

    result = CliRunner().invoke(app, [str(a) for a in [*test, "--device", "tpu"]])
    assert result.exit_code != 0 and "device 'tpu'" in str(result.exception)


@pytest.mark.slow
@pytest.mark.difference("BA-scorer-n-attributes", "BA-beta-keys")
def test_reference_scorer_keys_n_attributes_k_eps(corpus, tmp_path):
    """`scorer.n_attributes` is checked against the vectors; beta's `scorer.K` must be 2
    and `scorer.eps` is accepted."""
    base = ["score", "train", corpus / "train.csv", "--vectors-dir", corpus / "vectors"]
    run(*base, "--save-dir", tmp_path / "a", f"scorer.n_attributes={N_ATTRIBUTES}", "scorer.K=2")
    fitted = Scorer.load(tmp_path / "a" / "scorer.safetensors")
    assert fitted.n_attributes == N_ATTRIBUTES
    run(*base, "--save-dir", tmp_path / "b", "scorer.eps=1e-6")
    reference = Scorer.load(tmp_path / "b" / "scorer.safetensors")  # eps: balr fits otherwise
    np.testing.assert_array_equal(fitted.alpha_, reference.alpha_)
    for key, message in [
        ("scorer.n_attributes=512", f"vectors of {corpus / 'train.csv'} have {N_ATTRIBUTES}"),
        ("scorer.K=3", "K=2 states per attribute"),
    ]:
        result = CliRunner().invoke(
            app, [str(a) for a in [*base, "--save-dir", tmp_path / "c", key]]
        )
        assert result.exit_code != 0 and message in str(result.exception), result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.difference("BA-scorer-n-iterations")
def test_reference_n_iterations_key_on_every_scorer(corpus, tmp_path):
    """`scorer.n_iterations` (the reference's 100 on every scorer): maxllr's EM steps; the
    reference's dna/speech/cosine ignore it, so does balr."""
    from balr.scoring.config import score_config, scorer_params

    assert scorer_params(score_config(["scorer=maxllr"]))["n_iterations"] == 100
    base = ["score", "train", corpus / "train.csv", "--vectors-dir", corpus / "vectors"]
    run(*base, "--save-dir", tmp_path / "a", "scorer=dna")
    run(*base, "--save-dir", tmp_path / "b", "scorer=dna", "scorer.n_iterations=7")
    plain = Scorer.load(tmp_path / "a" / "scorer.safetensors")
    keyed = Scorer.load(tmp_path / "b" / "scorer.safetensors")
    assert plain.get_params() == keyed.get_params()
    assert "n_iterations" not in scorer_params(
        score_config(["scorer=cosine", "scorer.n_iterations=3"])
    )
