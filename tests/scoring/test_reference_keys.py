"""Reference command lines: scorer keys and checkpoint paths as a reference user types them."""

import pytest

from balr.scoring.config import score_config, scorer_params


@pytest.mark.difference("BA-beta-keys")
def test_scorer_eps_reported_unused_only_where_balr_does_not_use_it(caplog):
    """beta's `scorer.eps` is the reference's moment-fit constant (unused, said when changed);
    maxllr's `scorer.eps` is its own clipping parameter: nothing logged, not even by default."""
    with caplog.at_level("WARNING", logger="balr.scoring.config"):
        assert scorer_params(score_config(["scorer=maxllr"]))["eps"] == 1e-6
        assert scorer_params(score_config(["scorer=maxllr", "scorer.eps=1e-4"]))["eps"] == 1e-4
        scorer_params(score_config(["scorer=beta"]))
    assert caplog.messages == []
    with caplog.at_level("WARNING", logger="balr.scoring.config"):
        scorer_params(score_config(["scorer=beta", "scorer.eps=1e-6"]))
    assert len(caplog.messages) == 1 and caplog.messages[0].startswith("scorer.eps=1e-06: unused")


@pytest.mark.difference("BA-reference-checkpoint-paths")
def test_reference_scorer_checkpoint_path_reads_balr_scorer(corpus, tmp_path, monkeypatch, caplog):
    """The reference's `score train` writes runs/scorer/train/scorer.pt; its next command
    names that file. balr wrote scorer.safetensors there: it is read, with a note."""
    import pandas as pd
    from typer.testing import CliRunner

    from balr.cli.main import app

    monkeypatch.chdir(tmp_path)
    vectors = ["--vectors-dir", str(corpus / "vectors")]
    runner = CliRunner()
    result = runner.invoke(app, ["score", "train", str(corpus / "train.csv"), *vectors])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs/scorer/train/scorer.safetensors").is_file()
    test = ["score", "test", str(corpus / "test.csv"), str(corpus / "trials.tsv"), *vectors]
    with caplog.at_level("INFO", logger="balr.reference_paths"):
        typed = runner.invoke(app, [*test, "scorer.checkpoint_path=runs/scorer/train/scorer.pt"])
    assert typed.exit_code == 0, typed.output
    assert [r.message for r in caplog.records if r.name == "balr.reference_paths"] == [
        "runs/scorer/train/scorer.pt: not found; reading runs/scorer/train/scorer.safetensors, "
        "the file balr writes for it (see docs/differences.md)"
    ]
    written = "scorer.checkpoint_path=runs/scorer/train/scorer.safetensors"
    balr = runner.invoke(app, [*test, written])
    assert balr.exit_code == 0, balr.output
    first = pd.read_csv(tmp_path / "runs/score/scores.csv", sep="\t")
    second = pd.read_csv(tmp_path / "runs/score2/scores.csv", sep="\t")
    assert first.scores.tolist() == second.scores.tolist() and first.scores.notna().all()
    missing = runner.invoke(app, [*test, "scorer.checkpoint_path=elsewhere/scorer.pt"])
    assert missing.exit_code == 1 and "elsewhere/scorer.pt: scorer checkpoint not found" in str(
        missing.exception
    )
