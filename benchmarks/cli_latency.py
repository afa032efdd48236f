"""CLI start-up latency: `balr --help`, every `balr CMD --help`, and `balr compare` on two
bundled short clips, each in a fresh interpreter (the median of `--repeats` runs, with the
peak memory of the process); then where `balr compare` spends its time before and after
the first sample is read (imports, config and embedding model, the other models, the
comparison), and which heavy libraries it imported (none of torch, pandas: the shipped
models run in numpy, docs/architecture.md). Figures depend on the machine's load: the
1-minute load average is recorded.

    python benchmarks/cli_latency.py [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLIPS = (
    REPO / "examples" / "audio" / "id00906" / "00014.flac",  # 3.0 s
    REPO / "examples" / "audio" / "id07531" / "00023.flac",  # 6.0 s
)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}

# in a fresh interpreter: the phases of one `balr compare` of the two clips, as JSON
PHASES = """
import json, sys, time
t = time.perf_counter(); phases = {}
def lap(name):
    global t
    now = time.perf_counter(); phases[name] = round(now - t, 3); t = now
from balr.compare import ComparisonPipeline, compare_config
from balr.compare.pipeline import build_compare_model
lap("import balr.compare")
model = build_compare_model(compare_config().embeddings.model, None, numpy=True)
lap("config + embedding model")
pipeline = ComparisonPipeline.from_files(model)
lap("BAE, scorer, calibration")
pipeline.compare([sys.argv[1]], [sys.argv[2]])
lap("comparison (audio read, embedded, scored)")
heavy = sorted(m for m in ("torch", "pandas", "scipy", "hydra", "matplotlib") if m in sys.modules)
print(json.dumps({"phases": phases, "embedding model": type(model).__name__, "heavy": heavy}))
"""


def run_once(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of `python -m balr.cli.main ARGS` in a new process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "balr.cli.main", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=REPO,
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"balr {' '.join(args)} failed ({process.returncode}): {stderr}")
    return seconds, usage.ru_maxrss / 1024


def measure(args: list[str], repeats: int) -> dict:
    """Median wall seconds and the largest peak RSS over `repeats` runs; printed."""
    runs = [run_once(args) for _ in range(repeats)]
    figures = {
        "seconds": round(statistics.median(s for s, _ in runs), 3),
        "peak_rss_mb": round(max(m for _, m in runs), 1),
    }
    seconds, memory = figures["seconds"], figures["peak_rss_mb"]
    print(f"balr {' '.join(args)[:40]:<40} {seconds:6.2f} s {memory:6.0f} MiB", flush=True)
    return figures


def command_paths() -> list[list[str]]:
    """Every command and sub-command of `balr`, as the words that name it."""
    from balr.cli.main import cli_command

    def walk(command, prefix: list[str]) -> list[list[str]]:
        found = [prefix] if prefix else []
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*prefix, name])
        return found

    return walk(cli_command(), [])


def compare_phases() -> dict:
    """Seconds of each phase of one comparison of the two clips, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", PHASES, *map(str, CLIPS)],
        capture_output=True, text=True, env=ENV, cwd=REPO, check=True,
    )  # fmt: skip
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    for name, seconds in measured["phases"].items():
        print(f"  compare phase {name:<42} {seconds:6.2f} s")
    print(f"  {measured['embedding model']}; heavy modules imported: {measured['heavy']}")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs per command (median).")
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/cli_latency.json)")
    options = parser.parse_args()
    results: dict = {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}
    results["help"] = {"balr --help": measure(["--help"], options.repeats)}
    for path in command_paths():
        name = f"balr {' '.join(path)} --help"
        results["help"][name] = measure([*path, "--help"], options.repeats)
    compare = ["compare", str(CLIPS[0]), "--test", str(CLIPS[1])]
    results["compare"] = {
        "clips": [str(p.relative_to(REPO)) for p in CLIPS],
        **measure(compare, options.repeats),
        **compare_phases(),
    }
    results["load_average_1min_after"] = os.getloadavg()[0]
    write_results("cli_latency", results, options.out)


if __name__ == "__main__":
    main()
