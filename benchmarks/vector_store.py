"""Write and read back 1,000,000 x 256 float32 vectors with the single-file vector store.

Target: reading them back (ids, index and every vector in memory) in < 10 s on 2 cores.
For contrast it also times per-file `.txt` sidecars on a sample and extrapolates.

    python benchmarks/vector_store.py [--n 1000000] [--dim 256] [--out results.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, timed, write_results  # noqa: E402

from balr.data import VectorStore, read_vector, write_vector, write_vector_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--sidecar-sample", type=int, default=2000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results: dict = {"n_vectors": args.n, "dim": args.dim}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        base = Path(tmp) / "embeddings"
        ids = [f"spk{i // 100:05d}/utt{i:07d}" for i in range(args.n)]
        vectors = rng.standard_normal((args.n, args.dim), dtype=np.float32)
        with timed(results, "write_seconds"):
            write_vector_store(base, ids, vectors)
        del vectors
        rss_before_read = peak_rss_mb()
        with timed(results, "read_all_seconds"):
            store = VectorStore.open(base)
            loaded = store.gather(store.ids)  # every vector materialised, in id order
        assert loaded.shape == (args.n, args.dim)
        query = [ids[i] for i in rng.choice(args.n, 100_000, replace=False)]
        with timed(results, "gather_100k_random_ids_seconds"):
            store.gather(query)
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
        results["peak_rss_mb_before_read"] = round(rss_before_read, 1)
        results["store_file_mb"] = round(base.with_suffix(".npy").stat().st_size / 2**20, 1)
        results.update(_sidecar_figures(Path(tmp), args.sidecar_sample, args.dim, args.n))
    results["target_read_seconds"] = 10.0
    results["meets_target"] = results["read_all_seconds"] < 10.0
    print(f"peak RSS: {results['peak_rss_mb']} MiB; target met: {results['meets_target']}")
    write_results("vector_store", results, args.out)


def _sidecar_figures(folder: Path, sample: int, dim: int, n: int) -> dict:
    """Time `sample` per-recording .txt files and extrapolate to `n` (one file per recording)."""
    paths = [folder / "side" / f"u{i}_emb.txt" for i in range(sample)]
    vector = np.random.default_rng(1).standard_normal(dim).astype(np.float32)
    start = time.perf_counter()
    for path in paths:
        write_vector(path, vector)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    for path in paths:
        read_vector(path)
    read_s = time.perf_counter() - start
    figures = {
        "sidecar_txt_sample": sample,
        "sidecar_txt_read_seconds_extrapolated": round(read_s / sample * n, 1),
        "sidecar_txt_write_seconds_extrapolated": round(write_s / sample * n, 1),
    }
    print(
        f"per-file .txt sidecars, extrapolated to {n}: read "
        f"{figures['sidecar_txt_read_seconds_extrapolated']} s, write "
        f"{figures['sidecar_txt_write_seconds_extrapolated']} s"
    )
    return figures


if __name__ == "__main__":
    main()
