"""Vector files in every format, the single-file store, crash safety and safe unpickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from balr.data import (
    AudioDataset,
    DatasetItem,
    VectorStore,
    VectorStoreWriter,
    read_vector,
    write_vector,
)
from balr.data.vectors import store_paths
from balr.errors import DataError
from tests.conftest import EXAMPLES

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("fmt", ["txt", "npy", "pkl"])
def test_vector_file_round_trip(tmp_path, fmt):
    emb = RNG.normal(size=256).astype(np.float32)
    ba = np.stack([b := RNG.integers(0, 2, 512), 1 - b], axis=1)
    write_vector(tmp_path / f"x_emb.{fmt}", emb)
    write_vector(tmp_path / f"x_ba.{fmt}", ba)
    # text keeps 8 significant digits; binary formats are exact
    np.testing.assert_allclose(read_vector(tmp_path / f"x_emb.{fmt}"), emb, rtol=1e-7)
    np.testing.assert_array_equal(read_vector(tmp_path / f"x_ba.{fmt}"), ba)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"x_ba.{fmt}", f"x_emb.{fmt}"]


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil_emb.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(DataError, match=r"evil_emb\.pkl: cannot read vector .*refusing to load"):
        read_vector(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.difference("BA-emb-pkl")
def test_reference_pickles_of_arrays_and_tensors_load(tmp_path, protocol):
    """The reference library pickles `_emb`/`_ba` vectors with protocol 5 (numpy's
    `_frombuffer`); tensors pickle through `torch.storage._load_from_bytes`."""
    emb = RNG.normal(size=256).astype(np.float32)
    ba = np.stack([b := RNG.integers(0, 2, 512), 1 - b], axis=1).astype(np.float32)
    (tmp_path / "a_emb.pkl").write_bytes(pickle.dumps(emb, protocol=protocol))
    (tmp_path / "a_ba.pkl").write_bytes(pickle.dumps(torch.from_numpy(ba), protocol=protocol))
    (tmp_path / "b_emb.pkl").write_bytes(
        pickle.dumps(torch.from_numpy(emb)[::2], protocol=protocol)
    )
    np.testing.assert_array_equal(read_vector(tmp_path / "a_emb.pkl"), emb)
    np.testing.assert_array_equal(read_vector(tmp_path / "a_ba.pkl"), ba)
    np.testing.assert_array_equal(read_vector(tmp_path / "b_emb.pkl"), emb[::2])


def test_pickle_of_another_object_is_refused_by_type(tmp_path):
    path = tmp_path / "list_emb.pkl"
    path.write_bytes(pickle.dumps([1.0, 2.0]))
    with pytest.raises(DataError, match=r"list_emb\.pkl: pickle holds a list"):
        read_vector(path)


def test_tensor_pickle_with_code_inside_its_storage_is_refused(tmp_path):
    """A crafted storage archive is read with weights_only=True: its code never runs."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    class EvilStorage:
        def __reduce__(self):
            import io

            buffer = io.BytesIO()
            torch.save(Exploit(), buffer)
            return (torch.storage._load_from_bytes, (buffer.getvalue(),))

    path = tmp_path / "evil_ba.pkl"
    path.write_bytes(pickle.dumps(EvilStorage()))
    marker.unlink(missing_ok=True)  # torch.save above does not run it; make sure
    with pytest.raises(DataError, match=r"evil_ba\.pkl: cannot read vector"):
        read_vector(path)
    assert not marker.exists()


def test_unknown_suffix_and_garbage_text(tmp_path):
    with pytest.raises(DataError, match=r"unknown vector format '\.csv'"):
        read_vector(tmp_path / "x.csv")
    (tmp_path / "bad_emb.txt").write_text("1.0 abc\n")
    with pytest.raises(DataError, match=r"bad_emb\.txt: cannot read vector"):
        read_vector(tmp_path / "bad_emb.txt")


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(DataError):
        write_vector(tmp_path / "x_emb.xyz", np.ones(3))
    assert list(tmp_path.iterdir()) == []


def test_store_round_trip_and_last_write_wins(tmp_path):
    base = tmp_path / "embeddings"
    first = RNG.normal(size=(5, 8)).astype(np.float32)
    with VectorStoreWriter(base) as writer:
        for i, v in enumerate(first):
            writer.put(f"u{i}", v)
    with VectorStoreWriter(base) as writer:  # a second run rewrites u2 and adds u5
        writer.put("u2", np.full(8, 9.0))
        writer.put("u5", np.full(8, -1.0))
    store = VectorStore.open(base)
    assert sorted(store.ids) == ["u0", "u1", "u2", "u3", "u4", "u5"]
    np.testing.assert_array_equal(store.get("u2"), np.full(8, 9.0))
    np.testing.assert_array_equal(store.gather(["u4", "u0"]), first[[4, 0]])
    assert isinstance(store.array, np.memmap)
    assert not store_paths(base)["partial"].exists()
    with pytest.raises(DataError, match="no vector for id 'zz'"):
        store.gather(["u1", "zz"])


def test_store_survives_a_crash_mid_write(tmp_path):
    base = tmp_path / "embeddings"
    writer = VectorStoreWriter(base)
    for i in range(3):
        writer.put(f"u{i}", np.full(4, float(i)))
    writer._data.flush()
    writer._ids.flush()
    # simulate a crash while writing a 4th row: half a row and a cut-off id line
    writer._data.write(np.full(2, 3.0, np.float32).tobytes())
    writer._ids.write("u3")
    writer._data.close()
    writer._ids.close()
    writer._lock.release()  # the lock dies with a crashed process
    partial = VectorStore.open_partial(base)
    assert partial.ids == ["u0", "u1", "u2"]  # the incomplete row is ignored
    with VectorStoreWriter(base) as resumed:  # a new run merges what the crashed one saved
        resumed.put("u3", np.full(4, 3.0))
    store = VectorStore.open(base)
    np.testing.assert_array_equal(store.gather(["u0", "u1", "u2", "u3"])[:, 0], [0, 1, 2, 3])


EXAMPLE_CSV = EXAMPLES / "audio" / "metadata.csv"


WRITE_ONE_VECTOR = """
import sys, time
import numpy as np
from balr.data import VectorStoreWriter
from balr.errors import DataError
try:
    writer = VectorStoreWriter(sys.argv[1])
except DataError as exc:
    print("refused:", exc)
    sys.exit(3)
writer.put(sys.argv[2], np.full(4, 2.0, np.float32))
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
writer.close()
"""


@pytest.mark.slow
def test_a_second_process_cannot_write_to_a_store_in_use(tmp_path):
    """Two concurrent writers used to lose each other's vectors; now the second is refused
    with a clear message, and once the first has finished a new writer appends normally."""
    import subprocess
    import sys

    base = tmp_path / "vectors" / "emb"
    first = subprocess.Popen(
        [sys.executable, "-c", WRITE_ONE_VECTOR, str(base), "a", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline().strip() == "ready"
        second = subprocess.run(
            [sys.executable, "-c", WRITE_ONE_VECTOR, str(base), "b", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 3
        assert f"refused: {base}: another balr process (pid {first.pid})" in second.stdout
    finally:
        first.kill()
        first.wait()
    # the killed writer's appended row survives; the lock died with it
    with VectorStoreWriter(base) as writer:
        writer.put("b", np.ones(4, np.float32))
    store = VectorStore.open(base)
    assert sorted(store.ids) == ["a", "b"]


@pytest.mark.parametrize("fmt", ["txt", "npy", "pkl", "store"])
def test_dataset_vectors_in_every_format_mirror_the_tree(tmp_path, fmt):
    csv = EXAMPLE_CSV
    ds = AudioDataset.from_path(csv, output_dir=tmp_path, vector_format=fmt)
    emb = RNG.normal(size=(len(ds), 32)).astype(np.float32)
    bits = RNG.integers(0, 2, size=(len(ds), 64))
    ba = np.stack([bits, 1 - bits], axis=-1)
    ds.save_vectors("emb", range(len(ds)), emb)
    ds.save_vectors("ba", range(len(ds)), ba)
    if fmt == "store":
        assert (tmp_path / "embeddings.npy").is_file() and (
            tmp_path / "binary_attributes.npy"
        ).is_file()
    else:  # output dir mirrors SPEAKER/UTT.flac
        assert (tmp_path / "id00906" / f"00014_emb.{fmt}").is_file()
    reread = AudioDataset.from_path(csv, output_dir=tmp_path, vector_format=fmt)
    idx, got = reread.stack_vectors("emb")
    assert idx.tolist() == list(range(8))
    np.testing.assert_allclose(got, emb, rtol=1e-7)
    idx, got_ba = reread.stack_vectors("ba", indices=[3, 1])
    np.testing.assert_array_equal(got_ba, ba[[3, 1]])
    np.testing.assert_array_equal(reread.get_vector(5, "ba"), ba[5])


def test_stack_vectors_skips_missing_items(tmp_path, caplog):
    ds = AudioDataset.from_path(EXAMPLE_CSV, output_dir=tmp_path)
    ds.save_vectors("emb", [0, 2], [np.ones(3), np.full(3, 2.0)])
    idx, got = ds.stack_vectors("emb", indices=[0, 1, 2])
    assert idx.tolist() == [0, 2] and got[:, 0].tolist() == [1.0, 2.0]
    assert "1 of 3 items have no embeddings vector (first: id00906/00028)" in caplog.text


def test_stack_vectors_mixes_stores_and_sidecars_in_item_order(tmp_path):

    ds = AudioDataset([DatasetItem(id=f"u{i}") for i in range(5)], tmp_path, vector_format="npy")
    with VectorStoreWriter(tmp_path / "embeddings.rank0") as old:  # an older shard
        old.put("u1", np.full(3, -1.0))
        old.put("u3", np.full(3, 3.0))
    with VectorStoreWriter(tmp_path / "embeddings.rank1") as new:  # a newer shard wins for u1
        new.put("u1", np.full(3, 1.0))
    write_vector(tmp_path / "u4_emb.npy", np.full(3, 4.0))  # a sidecar file
    write_vector(tmp_path / "u0_emb.npy", np.full(3, 0.0))
    indices, stacked = ds.stack_vectors("emb")
    assert indices.tolist() == [0, 1, 3, 4]  # u2 has no vector
    np.testing.assert_array_equal(stacked[:, 0], [0.0, 1.0, 3.0, 4.0])
    with pytest.raises(DataError, match=r"u0_emb.npy: vector shape \(5,\) differs from \(3,\)"):
        write_vector(tmp_path / "u0_emb.npy", np.zeros(5))
        ds.stack_vectors("emb")


def test_a_store_of_integer_vectors_refuses_fractions_instead_of_truncating(tmp_path):
    with VectorStoreWriter(tmp_path / "ba") as writer:
        writer.put("a", np.array([[1, 0], [0, 1]], dtype=np.int64))
        with pytest.raises(DataError, match="id b: the store holds integer vectors"):
            writer.put("b", np.array([[0.5, 0.5], [0.0, 1.0]]))
        writer.put("c", np.array([[0.0, 1.0], [1.0, 0.0]]))  # whole numbers as floats are fine
    store = VectorStore.open(tmp_path / "ba")
    assert sorted(store.ids) == ["a", "c"]
