"""Helpers shared by the benchmark scripts: peak memory, timing, JSON output."""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(results: dict, key: str):
    """Store the wall-clock seconds of the block in `results[key]` and print them."""
    start = time.perf_counter()
    yield
    results[key] = round(time.perf_counter() - start, 3)
    print(f"{key}: {results[key]:.3f} s", flush=True)


def write_results(name: str, results: dict, out: str | None) -> Path:
    """Write the figures with the machine they were measured on; return the path."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "benchmark": name,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        **results,
    }
    path.write_text(json.dumps(results, indent=2))
    print(f"results written to {path}")
    return path
