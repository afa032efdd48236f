"""A torchrun worker (WORLD_SIZE > 1) leaves `balr` through `os._exit` after its command:
what it printed still reaches the pipe and its exit status is the command's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # end-to-end runs (models, CLI processes): not in `make test-fast`


def run_as_worker(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}
    command = [sys.executable, "-m", "balr.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_worker_output_is_flushed_and_success_is_status_0():
    result = run_as_worker("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("balr ")


@pytest.mark.slow
def test_worker_error_is_one_line_and_status_1(tmp_path):
    missing = tmp_path / "missing.csv"
    result = run_as_worker("score", "test", str(missing), str(missing))
    assert result.returncode == 1
    assert "error:" in result.stderr and "missing.csv" in result.stderr
