"""Net speech duration of real clips and of generated non-speech: the figures behind
`embeddings.min_speech_s`.

Real speech: the bundled examples (VoxCeleb2) and, when /work/shared/data (or --data) has them,
a fixed random sample of speechocean762, Common Voice and LibriSpeech clips. Non-speech: 2 s
and 10 s of digital silence, DC, low and loud white noise, tones, square waves and full-scale
random clipping, generated here; and, reported apart as the detector's known limits, signals
that switch on and off like speech (noise and tone bursts, clicks, a chirp). Prints every
figure, the largest non-speech and smallest real duration, how many of each the default
`min_speech_s` refuses, and writes JSON (default benchmarks/results/speech_detection.json).

    python benchmarks/speech_detection.py [--data /work/shared/data] [--per-corpus 30]
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
from balr.embeddings.batch import ExtractionOptions  # noqa: E402
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


def limits(seconds: float) -> Iterator[tuple[str, np.ndarray]]:
    """Generated non-speech that is not steady: WebRTC counts much of it as speech."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(1)
    gate = np.sin(2 * np.pi * 2 * t) > 0
    yield "noise bursts (2 Hz on/off)", rng.standard_normal(n) * 0.1 * gate
    yield "tone bursts (2 Hz on/off)", 0.5 * np.sin(2 * np.pi * 440 * t) * gate
    yield "clicks", (rng.random(n) < 0.001) * 0.8
    yield "chirp 200-3200 Hz", 0.5 * np.sin(2 * np.pi * (200 + 150 * t) * t)


def measure_generated(signals: Iterator[tuple[str, np.ndarray]]) -> list[dict]:
    """Net speech of generated signals, printed and as rows."""
    rows = []
    for name, wave in signals:
        measure = measure_speech(wave.astype(np.float32), SR)
        rows.append({"signal": name, "speech_s": measure.speech_s, "problem": measure.problem})
        print(f"{name:<40} {measure.speech_s:6.2f} s  {measure.problem or ''}")
    return rows


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
    parser.add_argument("--per-corpus", type=int, default=30)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    generated = measure_generated(
        (f"{name}, {seconds:g} s", wave)
        for seconds in (2.0, 10.0)
        for name, wave in non_speech(seconds)
    )
    print("\nknown limits (not steady, not speech):")
    limit_rows = measure_generated((f"{name}, 10 s", wave) for name, wave in limits(10.0))
    print()
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
                f"{corpus:<20} {path.name:<38} {len(wave) / SR:6.2f} s audio, "
                f"{measure.speech_s:6.2f} s speech  {measure.problem or ''}"
            )
    most_generated = max(g["speech_s"] for g in generated)
    least_real = min(r["speech_s"] for r in real)
    threshold = ExtractionOptions().min_speech_s
    refused_real = sum(r["speech_s"] < threshold or r["problem"] is not None for r in real)
    accepted_fake = sum(g["speech_s"] >= threshold and g["problem"] is None for g in generated)
    print(f"\nnon-speech: at most {most_generated:.2f} s of speech ({len(generated)} signals)")
    print(f"real clips: at least {least_real:.2f} s of speech ({len(real)} clips)")
    print(
        f"default min_speech_s {threshold:g} s refuses {len(generated) - accepted_fake} of "
        f"{len(generated)} non-speech signals and {refused_real} of {len(real)} real clips"
    )
    path = write_results(
        "speech_detection",
        {
            "max_non_speech_s": most_generated,
            "min_real_speech_s": least_real,
            "default_min_speech_s": threshold,
            "real_refused_by_default": refused_real,
            "non_speech_accepted_by_default": accepted_fake,
            "non_speech": generated,
            "limits": limit_rows,
            "real": real,
        },
        args.out,
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
