"""CLI polish: flags without `<bool>`, a readable compare usage line, `--save-dir` everywhere
(old names still accepted), one unit name for natural-log LRs in terminal and HTML."""

from __future__ import annotations

import re

import numpy as np
import pytest

from balr.cli.compare import print_result
from balr.cli.extractor import dashed_overrides
from balr.cli.main import cli_command, main
from balr.compare import Comparison, ComparisonPipeline, compare_config
from balr.data import AudioDataset, VectorStore
from balr.embeddings import build_embedding_model
from tests.conftest import EXAMPLES, REPO_ROOT

CLIPS = EXAMPLES / "audio"


def _command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


def _help(args: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_no_help_shows_bool_after_a_flag(capsys, monkeypatch):
    paths = _command_paths(cli_command())
    assert ("score", "test") in paths and ("extractor", "features") in paths
    for path in paths:
        text = _help(list(path), capsys, monkeypatch)
        assert "--help" in text and "<bool>" not in text, (path, text)
    assert "--no-calibration " in _help(["compare"], capsys, monkeypatch)


def test_compare_usage_line_is_readable(capsys, monkeypatch):
    text = _help(["compare"], capsys, monkeypatch)
    assert "Usage: balr compare ENROLL... --test TEST... [OPTIONS] [key=value]..." in text


def test_output_folders_are_save_dir_and_old_names_are_hidden(capsys, monkeypatch):
    text = _help(["extractor", "features"], capsys, monkeypatch)
    assert "--save-dir" in text and "--output-dir" not in text and "--out-dir" not in text
    for path in (["vectors", "pack"], ["vectors", "export-kaldi"]):  # readers of vectors
        text = _help(path, capsys, monkeypatch)
        assert "--vectors-dir" in text, path
        assert "--save-dir" not in text and "--output-dir" not in text, path


def test_vectors_dir_and_the_old_save_dir_output_dir_names_all_work(tmp_path, caplog):
    """`vectors pack` reads the vectors from `--vectors-dir`, as every reading command;
    `--save-dir` (deprecated, said so) and `--output-dir` still work."""
    csv = str(CLIPS / "metadata.csv")
    ds = AudioDataset.from_path(csv, output_dir=tmp_path)
    vectors = np.random.default_rng(3).normal(size=(len(ds), 6)).astype(np.float32)
    ds.save_vectors("emb", range(len(ds)), vectors)
    for option in ("--vectors-dir", "--save-dir", "--output-dir"):
        with pytest.raises(SystemExit) as exit_info:
            main(["vectors", "pack", csv, option, str(tmp_path)])
        assert exit_info.value.code in (0, None)
        store = VectorStore.open(tmp_path / "embeddings")
        np.testing.assert_allclose(store.gather(ds.ids), vectors, rtol=1e-7)
        (tmp_path / "embeddings.npy").unlink()
        deprecated = "--save-dir is deprecated here: it is --vectors-dir"
        assert (deprecated in caplog.text) == (option == "--save-dir"), option
        caplog.clear()


def test_extractor_features_accepts_save_dir_and_out_dir(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "balr.doublemha.data.write_features",
        lambda source, data_dir, out_dir, force: (
            calls.append(out_dir) or {"written": 0, "existing": 0, "failed": 0}
        ),
    )
    for option in ("--save-dir", "--out-dir"):
        with pytest.raises(SystemExit) as exit_info:
            main(["extractor", "features", str(tmp_path), option, str(tmp_path / option)])
        assert exit_info.value.code in (0, None)
    assert calls == [tmp_path / "--save-dir", tmp_path / "--out-dir"]
    assert dashed_overrides(["--save-dir", "runs/x"]) == ["out_dir=runs/x"]


@pytest.fixture(scope="module")
def comparison():
    """The shipped models on two clips of one speaker."""
    ge2e = build_embedding_model(compare_config().embeddings.model)
    pipeline = ComparisonPipeline.from_files(ge2e)
    same = sorted((CLIPS / "id00906").glob("*.flac"))[:2]
    return Comparison(pipeline, pipeline.compare([same[0]], [same[1]]))


@pytest.mark.slow
def test_terminal_and_html_name_the_natural_log_unit_ln_lr(comparison, tmp_path, capsys):
    print_result(comparison.result, 3)
    out = capsys.readouterr().out
    llr = comparison.result.llr
    assert f"log10 LR = {llr / np.log(10):.2f}   ln LR = {llr:.3f}" in out
    assert re.search(r"┃ +ln LR ┃", out) and "log LR" not in out
    html = comparison.write_report(tmp_path / "report.html", 3).read_text()
    assert f"ln LR = {llr:.3f}" in html
    assert "<th>contribution (ln LR)</th>" in html
    assert "natural log" not in html and "log LR" not in html


@pytest.mark.slow
def test_readme_compare_output_is_what_its_commands_print(tmp_path, monkeypatch, capsys):
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("```text\n$ balr compare ", 1)[1].split("```", 1)[0]
    runs = [part for part in ("$ balr compare " + block).split("$ balr compare ") if part]
    assert len(runs) == 2
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    for run in runs:
        command, expected = run.split("\n", 1)
        args = command.split()
        report = tmp_path / "report.html"
        args[args.index("--report") + 1] = str(report)
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", *args])
        assert exit_info.value.code in (0, None)
        printed = capsys.readouterr().out.replace(str(report), "report.html")
        lines = [line.rstrip() for line in printed.strip().splitlines()]
        assert lines == expected.strip().splitlines(), command
