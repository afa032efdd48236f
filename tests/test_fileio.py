"""Atomic writes and strict JSON."""

from __future__ import annotations

import fcntl
import json
import math
import os
import signal
import stat

import pytest

from balr.errors import DataError
from balr.fileio import (
    WriterLock,
    atomic_path,
    atomic_write_json,
    interrupt_deferred,
    next_run_dir,
)


def test_atomic_path_removes_the_temporary_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_files_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        import importlib

        import balr.fileio

        importlib.reload(balr.fileio)
        balr.fileio.atomic_write_text(tmp_path / "x.txt", "x")
        assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644
    finally:
        os.umask(mask)
        importlib.reload(balr.fileio)


def test_strict_json_for_non_finite_numbers(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"cllr": math.inf, "x": [-math.inf, math.nan, 1.5]})
    text = (tmp_path / "m.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"cllr": "inf", "x": ["-inf", "nan", 1.5]}


def test_next_run_dir_counts_up(tmp_path):
    assert next_run_dir(tmp_path) == tmp_path / "train1"
    (tmp_path / "train1").mkdir()
    assert next_run_dir(tmp_path, "eval") == tmp_path / "eval1"
    assert next_run_dir(tmp_path) == tmp_path / "train2"


def test_interrupt_deferred_holds_ctrl_c_until_the_block_ends():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt_deferred():
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of a write
            steps.append("written")
            steps.append("counted")
        steps.append("after the block")  # never reached: Ctrl-C is delivered at its end
    assert steps == ["written", "counted"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupt_deferred():  # no Ctrl-C: nothing raised
        steps.append("quiet")
    assert steps[-1] == "quiet"


def test_interrupt_deferred_passes_ctrl_c_to_the_previous_handler():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: seen.append(signum))
    try:
        with interrupt_deferred():
            signal.raise_signal(signal.SIGINT)
            assert seen == []  # held
        assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_writer_lock_refuses_a_second_writer_and_leaves_no_file(tmp_path):
    path = tmp_path / "speech_durations.tsv.lock"
    first = WriterLock(path, "out")
    assert path.read_text() == f"{os.getpid()}\n"
    with pytest.raises(DataError, match=r"^out: another balr process \(pid \d+\) is writing"):
        WriterLock(path, "out")
    first.release()
    assert not path.exists()
    first.release()  # twice is harmless
    # a process that opened the file before it was removed, and locks it after, holds a
    # lock on a file no other process can find: WriterLock takes the path's new file instead
    stale = open(tmp_path / "x", "a+")
    again = WriterLock(path, "out")
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another inode: no conflict
    with pytest.raises(DataError):
        WriterLock(path, "out")
    again.release()
    stale.close()
    (tmp_path / "x").unlink()
    assert list(tmp_path.iterdir()) == []
