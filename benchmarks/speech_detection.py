"""Net speech duration of real clips and of generated non-speech: the figures behind
`embeddings.min_speech_s`.

Real speech: the bundled examples (VoxCeleb2) and, when /work/shared/data (or --data) has them,
a fixed random sample of speechocean762, Common Voice and LibriSpeech clips. Non-speech: 2 s
and 10 s of digital silence, DC, low and loud white noise, tones, square waves and full-scale
random clipping, generated here. Prints every figure, the largest non-speech and smallest real
duration, and writes JSON (default benchmarks/results/speech_detection.json).

    python benchmarks/speech_detection.py [--data /work/shared/data] [--per-corpus 12]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from balr.audio import load_audio  # noqa: E402
from balr.embeddings.vad import measure_speech  # noqa: E402

SR = 16000
ROOT = Path(__file__).resolve().parents[1]
CORPORA = {
    "speechocean762": "speechocean762/audio/*/*.opus",
    "commonvoice": "commonvoice-6.1-sample/audio/*/*.opus",
    "librispeech": "librispeech-train-clean-100-1utt/*.flac",
}


def non_speech(seconds: float) -> Iterator[tuple[str, np.ndarray]]:
    """Generated signals without speech, `seconds` long."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(0)
    yield "digital silence", np.zeros(n)
    yield "DC offset 0.3", np.full(n, 0.3)
    for dbfs in (-80, -60, -40, -20):
        yield f"white noise {dbfs} dBFS", rng.standard_normal(n) * 10 ** (dbfs / 20)
    for hz in (100, 440, 1000, 3000):
        yield f"tone {hz} Hz", 0.5 * np.sin(2 * np.pi * hz * t)
        yield f"square {hz} Hz (clipped)", np.sign(np.sin(2 * np.pi * hz * t))
    yield "random +-1 (clipping only)", np.where(rng.random(n) < 0.5, -1.0, 1.0)


def real_files(data: Path, per_corpus: int) -> dict[str, list[Path]]:
    """The bundled examples and a fixed sample of each shared corpus found."""
    files = {"examples (VoxCeleb2)": sorted((ROOT / "examples" / "audio").glob("*/*.flac"))}
    rng = random.Random(0)
    for name, pattern in CORPORA.items():
        found = sorted(data.glob(pattern))
        if found:
            files[name] = rng.sample(found, min(per_corpus, len(found)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--per-corpus", type=int, default=12)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    generated = []
    for seconds in (2.0, 10.0):
        for name, wave in non_speech(seconds):
            measure = measure_speech(wave.astype(np.float32), SR)
            generated.append(
                {
                    "signal": f"{name}, {seconds:g} s",
                    "speech_s": measure.speech_s,
                    "problem": measure.problem,
                }
            )
            print(f"{generated[-1]['signal']:<40} {measure.speech_s:6.2f} s  {measure.problem}")
    real = []
    for corpus, paths in real_files(args.data, args.per_corpus).items():
        for path in paths:
            wave = load_audio(path, SR)
            measure = measure_speech(wave, SR)
            real.append(
                {
                    "corpus": corpus,
                    "file": path.name,
                    "duration_s": len(wave) / SR,
                    "speech_s": measure.speech_s,
                    "problem": measure.problem,
                }
            )
            print(
                f"{corpus:<20} {path.name:<36} {len(wave) / SR:6.2f} s audio, "
                f"{measure.speech_s:6.2f} s speech  {measure.problem or ''}"
            )
    most_generated = max(g["speech_s"] for g in generated)
    least_real = min(r["speech_s"] for r in real)
    print(f"\nnon-speech: at most {most_generated:.2f} s of speech ({len(generated)} signals)")
    print(
        f"real clips: at least {least_real:.2f} s of speech ({len(real)} clips, "
        f"{sum(r['problem'] is not None for r in real)} flagged)"
    )
    path = write_results(
        "speech_detection",
        {
            "max_non_speech_s": most_generated,
            "min_real_speech_s": least_real,
            "non_speech": generated,
            "real": real,
        },
        args.out,
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
