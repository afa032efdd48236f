"""`binarize` / `score test` with no checkpoint use the shipped models and calibration;
`score calibrate` fits a calibrator; calibration lowers Cllr on held-out real speech."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from balr import defaults
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.calibration import Calibrator
from balr.cli.main import main
from balr.data import AudioDataset, load_trials
from balr.data.speech import SPEECH_FILE, read_speech_durations
from balr.evaluation import cllr, eer
from balr.scoring import Scorer
from balr.scoring.cosine import unit_rows
from tests.conftest import EXAMPLES, VOXCELEB2

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

EXAMPLE_AUDIO = EXAMPLES / "audio"
#: VoxCeleb2 speakers of ../shared/data used by no stage of the recipe except its test set
HELD_OUT_VOXCELEB2 = ("id02477", "id03701", "id04961", "id06261", "id07417")


def score_example(vectors, save_dir, *extra) -> list:
    """`balr score test` arguments for the bundled example's trials."""
    return [
        "score",
        "test",
        EXAMPLE_AUDIO / "metadata.csv",
        EXAMPLE_AUDIO / "trials.tsv",
        "--vectors-dir",
        vectors,
        "--save-dir",
        save_dir,
        *extra,
    ]


def run(args: list, capsys, caplog=None) -> str:
    """Run `balr ARGS`; its output (stdout, stderr and log records); fails on a non-zero exit."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr()
    out = capsys.readouterr()
    logs = "\n".join(r.getMessage() for r in caplog.records) if caplog else ""
    return out.out + out.err + logs


def run_failing(args: list, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def extract_and_binarize(dataset, out):
    """`balr extract` (default GE2E) then `balr binarize` (the shipped encoder) into `out`."""
    for args in (
        ["extract", dataset, "--save-dir", out, "embeddings.num_workers=0"],
        ["binarize", dataset, "--save-dir", out],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        assert exit_info.value.code in (0, None)
    return out


@pytest.fixture(scope="module")
def example_vectors(tmp_path_factory):
    """GE2E embeddings of the bundled examples, then BA vectors from `balr binarize` with no
    checkpoint (the shipped encoder); returns the vectors dir."""
    return extract_and_binarize(
        EXAMPLE_AUDIO / "metadata.csv", tmp_path_factory.mktemp("example_vectors")
    )


def _example_vectors(vectors_dir, kind: str) -> tuple[list[str], np.ndarray]:
    ds = AudioDataset.from_path(EXAMPLE_AUDIO / "metadata.csv", output_dir=vectors_dir)
    indices, vectors = ds.stack_vectors(kind)
    assert len(indices) == 8
    return [ds.items[i].id for i in indices], vectors


def test_binarize_without_checkpoint_uses_the_shipped_encoder(example_vectors):
    _, embeddings = _example_vectors(example_vectors, "emb")
    _, counts = _example_vectors(example_vectors, "ba")
    expected = BinaryAttributeEncoder.load(defaults.BAE_CHECKPOINT).binarize(embeddings)
    np.testing.assert_array_equal(counts, expected)


def test_score_test_defaults_to_the_shipped_beta_scorer_and_calibration(
    example_vectors, tmp_path, capsys, caplog
):
    caplog.set_level(logging.INFO)
    out = run(
        score_example(example_vectors, tmp_path / "cal"),
        capsys,
        caplog,
    )
    assert f"shipped beta scorer {defaults.SCORER_CHECKPOINT}" in out
    # the summary line itself says which scorer scored (the reference only logs an error)
    assert f"with beta (shipped: {defaults.SCORER_CHECKPOINT}; no scorer.checkpoint_path)" in out
    assert f"calibrating with the shipped {defaults.CALIBRATION}" in out
    scores = pd.read_csv(tmp_path / "cal" / "scores.csv", sep="\t")
    ids, counts = _example_vectors(example_vectors, "ba")
    row = {item: i for i, item in enumerate(ids)}
    enroll = counts[[row[i] for i in scores.enrollment]]
    test = counts[[row[i] for i in scores.test]]
    raw = Scorer.load(defaults.SCORER_CHECKPOINT).score(enroll, test)
    np.testing.assert_allclose(scores.raw_score, raw, atol=1e-9)
    calibrator = Calibrator.load(defaults.CALIBRATION)
    # the shipped calibration is qmf: it takes each side's net speech seconds, which
    # `extract` wrote to speech_durations.tsv beside the vectors
    speech = read_speech_durations(example_vectors / SPEECH_FILE)
    pairs = zip(scores.enrollment, scores.test, strict=True)
    seconds = np.array([[speech[e], speech[t]] for e, t in pairs])
    np.testing.assert_allclose(scores.scores, calibrator.transform(raw, seconds), atol=1e-9)
    assert not np.allclose(calibrator.transform(raw, seconds), calibrator.transform(raw))
    metrics = json.loads((tmp_path / "cal" / "metrics.json").read_text())
    labels = load_trials(EXAMPLE_AUDIO / "trials.tsv").labels(
        AudioDataset.from_path(EXAMPLE_AUDIO / "metadata.csv")
    )
    assert metrics["calibration"] == str(defaults.CALIBRATION)
    assert metrics["cllr"] == pytest.approx(cllr(calibrator.transform(raw, seconds), labels))
    assert metrics["raw_cllr"] == pytest.approx(cllr(raw, labels))

    run(
        score_example(example_vectors, tmp_path / "raw", "--no-calibration"),
        capsys,
    )
    plain = pd.read_csv(tmp_path / "raw" / "scores.csv", sep="\t")
    assert "raw_score" not in plain.columns
    np.testing.assert_allclose(plain.scores, raw, atol=1e-9)


def test_cosine_of_embeddings_gets_the_shipped_cosine_calibration(
    example_vectors, tmp_path, capsys
):
    run(
        score_example(example_vectors, tmp_path / "cos", "scorer=cosine", "scorer.vectors=emb"),
        capsys,
    )
    scores = pd.read_csv(tmp_path / "cos" / "scores.csv", sep="\t")
    ids, embeddings = _example_vectors(example_vectors, "emb")
    row = {item: i for i, item in enumerate(ids)}
    unit = unit_rows(embeddings)
    cosines = (unit[[row[i] for i in scores.enrollment]] * unit[[row[i] for i in scores.test]]).sum(
        1
    )
    np.testing.assert_allclose(scores.raw_score, cosines, atol=1e-6)
    expected = Calibrator.load(defaults.COSINE_CALIBRATION).transform(cosines)
    np.testing.assert_allclose(scores.scores, expected, atol=1e-6)


def test_user_checkpoint_is_uncalibrated_unless_a_calibration_is_given(
    example_vectors, tmp_path, capsys, caplog
):
    caplog.set_level(logging.INFO)
    base = [
        "score",
        "test",
        EXAMPLE_AUDIO / "metadata.csv",
        EXAMPLE_AUDIO / "trials.tsv",
        "--vectors-dir",
        example_vectors,
        f"scorer.checkpoint_path={defaults.SCORER_CHECKPOINT}",
    ]
    out = run([*base, "--save-dir", tmp_path / "a"], capsys, caplog)
    assert "scores are not calibrated" in out
    assert "raw_score" not in pd.read_csv(tmp_path / "a" / "scores.csv", sep="\t").columns
    run([*base, "--save-dir", tmp_path / "b", "--calibration", defaults.CALIBRATION], capsys)
    calibrated = pd.read_csv(tmp_path / "b" / "scores.csv", sep="\t")
    speech = read_speech_durations(example_vectors / SPEECH_FILE)
    pairs = zip(calibrated.enrollment, calibrated.test, strict=True)
    seconds = [[speech[e], speech[t]] for e, t in pairs]
    expected = Calibrator.load(defaults.CALIBRATION).transform(calibrated.raw_score, seconds)
    np.testing.assert_allclose(calibrated.scores, expected)
    err = run_failing(
        [*base, "--calibration", tmp_path / "none.json", "--save-dir", tmp_path], capsys
    )
    assert "none.json: calibration file not found" in err
    err = run_failing([*base, "--no-calibration", "--calibration", defaults.CALIBRATION], capsys)
    assert "exclude each other" in err


def test_score_calibrate_recovers_the_gaussian_llr(tmp_path, capsys):
    """Targets ~ N(2, 1), non-targets ~ N(-2, 1): the true LLR is
    log N(s; 2, 1) - log N(s; -2, 1) = ((s + 2)^2 - (s - 2)^2) / 2 = 4 s, so a logistic
    calibrator must find slope ~4 and intercept ~0 (balanced classes)."""
    rng = np.random.default_rng(0)
    n = 2000
    rows = ["id,speaker"] + [f"a{i},A{i}" for i in range(n)] + [f"b{i},B{i}" for i in range(n)]
    rows += [f"c{i},A{i}" for i in range(n)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    trials = pd.DataFrame(
        {
            "enrollment": [f"a{i}" for i in range(n)] * 2,
            "test": [f"c{i}" for i in range(n)] + [f"b{i}" for i in range(n)],
            "raw_score": np.concatenate([rng.normal(2, 1, n), rng.normal(-2, 1, n)]),
        }
    )
    trials["scores"] = 100.0  # a calibrated column to be ignored: raw_score is preferred
    trials.to_csv(tmp_path / "scores.csv", sep="\t", index=False)
    out = run(["score", "calibrate", tmp_path / "scores.csv", tmp_path / "data.csv"], capsys)
    assert "2000 target and 2000 non-target" in out
    calibrator = Calibrator.load(tmp_path / "calibration.json")
    assert calibrator.slope_ == pytest.approx(4.0, abs=0.4)
    assert calibrator.intercept_ == pytest.approx(0.0, abs=0.2)
    run(
        [
            "score",
            "calibrate",
            tmp_path / "scores.csv",
            tmp_path / "data.csv",
            "--method",
            "pav",
            "--out",
            tmp_path / "pav.json",
            "--unbounded",
        ],
        capsys,
    )
    pav = Calibrator.load(tmp_path / "pav.json")
    assert pav.method == "pav" and pav.lower_bound_ is None
    assert pav.transform(np.array([0.0]))[0] == pytest.approx(0.0, abs=0.6)
    err = run_failing(
        ["score", "calibrate", tmp_path / "scores.csv", tmp_path / "data.csv", "--method", "x"],
        capsys,
    )
    assert "--method x" in err


@pytest.fixture(scope="module")
def held_out_voxceleb(tmp_path_factory):
    """The 15 clips of the 5 held-out VoxCeleb2 speakers (linked into a tmp tree), with GE2E
    embeddings and shipped-encoder BA vectors; returns (dataset CSV, trials TSV, vectors)."""
    if not VOXCELEB2.is_dir():
        pytest.skip("../shared/data/voxceleb/voxceleb2 is not present beside this checkout")
    root = tmp_path_factory.mktemp("voxceleb")
    rows = ["id,audio,speaker"]
    for speaker in HELD_OUT_VOXCELEB2:
        for clip in sorted((VOXCELEB2 / speaker).glob("*.wav")):
            (root / speaker).mkdir(exist_ok=True)
            (root / speaker / clip.name).symlink_to(clip)
            rows.append(f"{speaker}/{clip.stem},{speaker}/{clip.name},{speaker}")
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    ids = [r.split(",")[0] for r in rows[1:]]
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    trials = "enrollment\ttest\n" + "".join(f"{a}\t{b}\n" for a, b in pairs)
    (root / "trials.tsv").write_text(trials)
    vectors = extract_and_binarize(root / "data.csv", root / "vectors")
    return root / "data.csv", root / "trials.tsv", vectors


@pytest.mark.parametrize("scorer", [[], ["scorer=cosine", "scorer.vectors=emb"]])
def test_calibration_lowers_cllr_on_held_out_voxceleb(held_out_voxceleb, scorer, tmp_path, capsys):
    """Shipped scorer + calibrator on speakers none of them saw (15 clips, 3 per speaker:
    15 target and 90 non-target cross-session trials)."""
    data, trials, vectors = held_out_voxceleb
    run(
        ["score", "test", data, trials, "--vectors-dir", vectors, "--save-dir", tmp_path / "run"]
        + scorer,
        capsys,
    )
    scores = pd.read_csv(tmp_path / "run" / "scores.csv", sep="\t")
    labels = load_trials(trials).labels(AudioDataset.from_path(data))
    assert (labels == 1).sum() == 15 and (labels == 0).sum() == 90
    raw, calibrated = scores.raw_score.to_numpy(), scores.scores.to_numpy()
    assert cllr(calibrated, labels) < cllr(raw, labels)
    assert cllr(calibrated, labels) < 1.0  # better than a system that always says LR = 1
    assert eer(calibrated, labels)[0] < 0.3
