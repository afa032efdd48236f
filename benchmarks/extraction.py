"""`balr extract` end to end vs resemblyzer's own per-file loop, on >= 30 min of real speech.

Builds a directory of symlinks that repeats the shared LibriSpeech clips until it holds
`--minutes` of audio, then, in the same run, times (wall clock, interpreter start included):
  1. `balr extract DIR --save-dir OUT` (default GE2E model, DataLoader decoding, batching);
  2. resemblyzer's loop: `embed_utterance(preprocess_wav(path))` for each file (same weights).
Prints both real-time factors (audio seconds per wall second), their ratio (target: ours >=
1.0x theirs) and each job's peak RSS (main process; decoding workers reported apart).

    python benchmarks/extraction.py [--minutes 30] [--workers 2] [--threads 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LIBRISPEECH = REPO.parent / "shared" / "data" / "librispeech-train-clean-100-1utt"


def build_corpus(source: Path, target: Path, minutes: float) -> tuple[int, float]:
    """Symlink the source clips (repeated as needed) into `target` until `minutes` of audio."""
    from balr.audio import audio_duration

    clips = [(p, audio_duration(p)) for p in sorted(source.glob("*.flac"))]
    if not clips:
        raise SystemExit(f"no .flac files in {source}")
    total, count = 0.0, 0
    while total < minutes * 60:
        path, seconds = clips[count % len(clips)]
        (target / f"r{count // len(clips)}_{path.name}").symlink_to(path)
        total, count = total + seconds, count + 1
    return count, total


def run_child(args: list[str]) -> dict:
    """Run this script in child mode; return its JSON line plus the wall time around it."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)
    return result


def child_balr(corpus: str, out: str, workers: str, threads: str) -> None:
    """Child: `balr extract` in this process, then report peak RSS (self and workers)."""
    from balr.cli.main import main as balr_main

    overrides = [f"embeddings.num_workers={workers}", f"embeddings.threads={threads}"]
    try:
        balr_main(["extract", corpus, "--save-dir", out, *overrides])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    print(json.dumps(_rss()))


def child_resemblyzer(corpus: str) -> None:
    """Child: resemblyzer's documented per-file usage over the same files."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder("cpu", verbose=False)
    files = sorted(Path(corpus).glob("*.flac"))
    for path in files:
        encoder.embed_utterance(preprocess_wav(path))
    print(json.dumps({"files": len(files), **_rss()}))


def _rss() -> dict:
    return {
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_workers_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--source", type=Path, default=LIBRISPEECH)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="balr-extract-bench-") as tmp:
        corpus, out = Path(tmp) / "corpus", Path(tmp) / "emb"
        corpus.mkdir()
        files, seconds = build_corpus(args.source, corpus, args.minutes)
        print(f"corpus: {files} files, {seconds / 60:.1f} min of audio", flush=True)
        child = ["--child", "balr", str(corpus), str(out), str(args.workers), str(args.threads)]
        ours = run_child(child)
        written = len(list(out.glob("*_emb.txt")))
        print(f"balr extract: {ours['wall_s']:.1f} s, {written} vectors", flush=True)
        theirs = run_child(["--child", "resemblyzer", str(corpus)])
        print(f"resemblyzer loop: {theirs['wall_s']:.1f} s", flush=True)
    results = {
        "files": files,
        "audio_minutes": round(seconds / 60, 2),
        "cpu_count": os.cpu_count(),
        "balr_workers": args.workers,
        "balr_threads": args.threads or "torch default",
        "balr_vectors_written": written,
        "balr_wall_s": ours["wall_s"],
        "balr_rtf": round(seconds / ours["wall_s"], 1),
        "balr_peak_rss_mb": ours["peak_rss_mb"],
        "balr_worker_peak_rss_mb": ours["peak_rss_workers_mb"],
        "resemblyzer_wall_s": theirs["wall_s"],
        "resemblyzer_rtf": round(seconds / theirs["wall_s"], 1),
        "resemblyzer_peak_rss_mb": theirs["peak_rss_mb"],
    }
    results["speedup"] = round(results["balr_rtf"] / results["resemblyzer_rtf"], 2)
    print(
        f"real-time factor: balr {results['balr_rtf']}x, resemblyzer "
        f"{results['resemblyzer_rtf']}x, ratio {results['speedup']}x (target >= 1.0x)\n"
        f"peak RSS: balr {results['balr_peak_rss_mb']} MiB (+ workers "
        f"{results['balr_worker_peak_rss_mb']} MiB each at most), resemblyzer "
        f"{results['resemblyzer_peak_rss_mb']} MiB"
    )
    write_results("extraction", results, args.out)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "balr":
            child_balr(*sys.argv[3:7])
        else:
            child_resemblyzer(sys.argv[3])
    else:
        main()
