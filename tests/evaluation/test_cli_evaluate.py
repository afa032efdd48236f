"""`balr evaluate`: reads a scores CSV, prints the table, writes metrics.json and both PNGs."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from balr.cli.main import app, main
from balr.errors import ConfigError, DataError
from balr.evaluation import compute_metrics
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`

EXAMPLE_SCORES = EXAMPLES / "scores" / "example_scores.csv"


def invoke(*args: str):
    return CliRunner().invoke(app, ["evaluate", *args])


def test_example_file_end_to_end(tmp_path):
    result = invoke(str(EXAMPLE_SCORES), "--save-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "min_cllr" in result.stdout and "mcc" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    frame = pd.read_csv(EXAMPLE_SCORES)
    expected = compute_metrics(frame["scores"], frame["label"])
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert metrics["reference_metrics"]["EER_thres"] == metrics["EER_thres"]
    assert (metrics["n_target"], metrics["n_nontarget"]) == (200, 2000)
    # Calibrated Gaussian LLRs N(+-4, 8): EER = Phi(-sqrt 2) = 0.079 (200 targets: se ~0.02).
    assert metrics["eer"] == pytest.approx(norm.cdf(-np.sqrt(2)), abs=0.05)
    for name in ("det.png", "tippett.png"):
        assert matplotlib.image.imread(tmp_path / name).shape[0] > 300


def test_label_spellings_tsv_threshold_and_unknown_rows(tmp_path):
    # Accept >= 0.5: targets 0.9, 0.8 accepted and 0.1 missed -> TP 2, FN 1;
    # non-targets 0.7 accepted, 0.2 and 0.3 rejected -> FP 1, TN 2. The -1 and empty rows
    # (unknown speaker) are skipped.
    table = pd.DataFrame(
        {
            "llr": [0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 5.0, 6.0],
            "is_same": ["target", "TRUE", "1", "nontarget", "False", "0", "-1", ""],
        }
    )
    table.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    result = invoke(
        str(tmp_path / "s.tsv"),
        "--score-column",
        "llr",
        "--label-column",
        "is_same",
        "--sep",
        "\\t",
        "--threshold",
        "0.5",
        "--save-dir",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["n_target"], metrics["n_nontarget"]) == (3, 3)
    assert (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (2, 1, 1, 2)
    assert metrics["threshold"] == 0.5


def test_default_save_dir_counts_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert invoke(str(EXAMPLE_SCORES)).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "evaluate").iterdir()) == ["eval1", "eval2"]
    assert (tmp_path / "runs" / "evaluate" / "eval2" / "tippett.png").is_file()


@pytest.mark.parametrize(
    ("rows", "args", "error", "message"),
    [
        ("scores,label\n1.0,1\n", ["--label-column", "lab"], DataError, "no column lab"),
        ("scores,label\n1.0,yes\n0.0,0\n", [], DataError, "line 2: label 'yes'"),
        ("scores,label\n1.0,1\nabc,0\n", [], DataError, "line 3: score 'abc'"),
        ("scores,label\n1.0,1\n0.0,1\n", [], DataError, "no non-target trials"),
        ("scores,label\n1.0,1\n0.0,0\n", ["a=b"], ConfigError, "no key=value overrides"),
    ],
)
def test_bad_input_is_a_user_error(tmp_path, rows, args, error, message):
    (tmp_path / "s.csv").write_text(rows)
    result = invoke(str(tmp_path / "s.csv"), "--save-dir", str(tmp_path / "out"), *args)
    assert isinstance(result.exception, error)
    assert message in str(result.exception)
    assert error is ConfigError or "s.csv" in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_error_is_one_line_on_stderr(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(tmp_path / "none.csv")])
    assert exit_info.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "none.csv: no such file" in lines[0]
