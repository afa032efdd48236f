"""Reference command lines: scorer keys and checkpoint paths as a reference user types them."""

from balr.scoring.config import score_config, scorer_params


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
