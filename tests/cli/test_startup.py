"""CLI start-up: `balr --help` and every `balr CMD --help` import none of the heavy
libraries (torch, pytorch-metric-learning, pandas, matplotlib, scikit-learn, lir); the
commands import them when they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY = ("torch", "pytorch_metric_learning", "pandas", "matplotlib", "sklearn", "lir")

# every command path's --help, in one fresh interpreter; prints the heavy modules loaded
PROBE = """
import contextlib, io, json, sys
from balr.cli.main import cli_command, main

def paths(command, prefix=()):
    found = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        found += paths(sub, (*prefix, name))
    return found

shown = []
for path in paths(cli_command()):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main([*path, "--help"])
        except SystemExit as exc:
            assert exc.code in (0, None), (path, exc.code)
    assert "Usage: balr" in out.getvalue(), path
    shown.append(" ".join(path))
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"shown": shown, "heavy": heavy}))
"""


def _probe(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{code}"],
        capture_output=True, text=True, timeout=240, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_balr_help_imports_no_torch():
    probe = _probe(
        "import sys, json\nfrom balr.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps({'heavy': sorted(m for m in HEAVY if m in sys.modules)}))"
    )
    assert probe["heavy"] == []


def test_every_command_help_imports_no_heavy_library():
    probe = _probe(PROBE)
    assert {"", "compare", "score calibrate", "extractor train", "vectors pack"} <= set(
        probe["shown"]
    )
    assert probe["heavy"] == []
