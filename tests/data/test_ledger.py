"""The vectors ledger: whole rows under concurrent appends, latest row wins, cut rows ignored."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from balr.data import ledger
from balr.data.ledger import (
    LEDGER_FILE,
    LedgerView,
    LedgerWriter,
    MadeFrom,
    content_stamp,
    file_stamp,
    read_ledger,
    records_folder,
    split_stamp,
)

APPEND = """
import sys
from balr.data.ledger import LedgerWriter, MadeFrom
writer = LedgerWriter(sys.argv[1], "emb")
for i in range(400):
    writer.add(f"{sys.argv[2]}{i}", f"/v/{i}_emb.txt", MadeFrom("/a.wav", "1:2", "m:0"), "d")
writer.close()
"""


@pytest.mark.slow  # two Python processes importing torch
def test_two_processes_append_whole_rows(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", APPEND, str(tmp_path), prefix])
        for prefix in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = (tmp_path / LEDGER_FILE).read_text().splitlines()
    assert lines[0].startswith("kind\tid\tvector") and lines.count(lines[0]) == 1
    assert len(lines) == 801 and all(len(line.split("\t")) == 8 for line in lines)
    rows = read_ledger([tmp_path], "emb")
    assert len(rows) == 800 and rows["b7"].vector == "/v/7_emb.txt"
    assert (rows["a0"].source, rows["a0"].stamp, rows["a0"].model) == ("/a.wav", "1:2", "m:0")


def test_latest_row_wins_and_a_cut_row_is_ignored(tmp_path):
    writer = LedgerWriter(tmp_path, "ba")
    assert not (tmp_path / LEDGER_FILE).exists()  # nothing written yet: no file
    writer.add("u1", "/old.npy", None, "d1")
    writer.add("u1", "/new_ba.txt", MadeFrom("/u1_emb.txt", "d0", "bae:1"), "d2")
    writer.add("u\t2", "-", None)  # a tab in an id cannot break the row
    writer.close()
    with (tmp_path / LEDGER_FILE).open("a") as handle:
        handle.write("ba\tu1\t/cut")  # a crash in the middle of a row
    rows = read_ledger([tmp_path], "ba")
    assert rows["u1"].vector == "/new_ba.txt" and rows["u1"].digest == "d2"
    assert rows["u 2"].removed
    assert read_ledger([tmp_path], "emb") == {}


def test_records_folder_and_file_stamp(tmp_path):
    assert records_folder(None, tmp_path) == tmp_path / ".balr"
    assert records_folder(tmp_path / "out", tmp_path) == tmp_path / "out"
    (tmp_path / "a.wav").write_bytes(b"1234")
    info = (tmp_path / "a.wav").stat()
    assert file_stamp(tmp_path / "a.wav") == f"4:{info.st_mtime_ns}"
    assert file_stamp(tmp_path / "missing.wav") == "missing"


def test_content_stamp_adds_the_sha256_and_split_stamp_reads_both_formats(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"1234")
    sha = hashlib.sha256(b"1234").hexdigest()
    assert content_stamp(audio) == f"{file_stamp(audio)}:{sha}"
    assert split_stamp(content_stamp(audio)) == (file_stamp(audio), sha)
    assert split_stamp("4:99") == ("4:99", "")  # a row of balr before the digest
    assert content_stamp(tmp_path / "missing.wav") == "missing"


def test_stale_hashes_only_on_a_new_time_and_once_per_file(tmp_path, monkeypatch):
    """Same size and time: fresh, not hashed; another size: stale, not hashed; only the time:
    hashed once per file and view (same bytes fresh, other bytes stale)."""
    audio, other = tmp_path / "a.wav", tmp_path / "b.wav"
    audio.write_bytes(b"1234")
    other.write_bytes(b"abcd")
    writer = LedgerWriter(tmp_path, "emb")
    for name, path in (("a", audio), ("b", other)):
        writer.add(name, f"/v/{name}_emb.txt", MadeFrom(str(path), content_stamp(path), "m:0"))
    writer.close()
    hashed = []
    monkeypatch.setattr(ledger, "content_stamp", lambda p: hashed.append(p) or content_stamp(p))

    def stale(view, name):
        return view.stale("emb", name, f"/v/{name}_emb.txt")

    view = LedgerView([tmp_path])
    assert (stale(view, "a"), stale(view, "b"), hashed) == (None, None, [])
    for path in (audio, other):
        os.utime(path, ns=(7, 7))
    other.write_bytes(b"abce")  # same size, other bytes
    os.utime(other, ns=(7, 7))
    view = LedgerView([tmp_path])
    assert [stale(view, "a") for _ in range(3)] == [None] * 3 and hashed == [str(audio)]
    assert stale(view, "b") == (
        f"made from {other}, which changed since (size/modification time); extract it again"
    )
    other.write_bytes(b"abcde")
    assert "which changed since" in stale(LedgerView([tmp_path]), "b") and len(hashed) == 2
