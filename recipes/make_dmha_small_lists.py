"""Lists for recipes/train_dmha_small.sh from LibriSpeech, in the DoubleMHA list formats.

Training: the first N speakers' whole utterances (`path label -1`, paths without
extension). Validation: the held-out speakers' utterances cut into 3.5 s segments (wav),
all same-speaker segment pairs as clients and `--impostors-per-client` times as many
random cross-speaker pairs as impostors (more pairs: a less noisy EER). Same-utterance
segments make the client trials easier than cross-session ones.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import soundfile as sf

from balr.audio import load_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("librispeech", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-speakers", type=int, default=200)
    parser.add_argument("--segment-s", type=float, default=3.5)
    parser.add_argument("--impostors-per-client", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    files = sorted(args.librispeech.glob("*.flac"))
    train, valid = files[: args.train_speakers], files[args.train_speakers :]
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"{f.with_suffix('').name} {label} -1" for label, f in enumerate(train)]
    (args.out / "train_labels.txt").write_text("\n".join(lines) + "\n")
    segments = cut_segments(valid, args.out / "valid", args.segment_s)
    clients, impostors = make_pairs(segments, args.seed, args.impostors_per_client)
    (args.out / "clients.txt").write_text("".join(f"{a} {b}\n" for a, b in clients))
    (args.out / "impostors.txt").write_text("".join(f"{a} {b}\n" for a, b in impostors))
    print(
        f"{len(train)} training speakers; {len(segments)} validation segments of "
        f"{len(valid)} speakers; {len(clients)} client and {len(impostors)} impostor pairs"
    )


def cut_segments(files: list[Path], out: Path, segment_s: float) -> list[tuple[str, str]]:
    """Non-overlapping segments as 16 kHz wav; returns (relative path without ext, speaker)."""
    out.mkdir(parents=True, exist_ok=True)
    step = int(segment_s * 16000)
    segments = []
    for f in files:
        wave = load_audio(f, 16000)
        for k in range(len(wave) // step):
            name = f"{f.with_suffix('').name}_{k}"
            sf.write(out / f"{name}.wav", wave[k * step : (k + 1) * step], 16000)
            segments.append((name, f.name.split("-")[0]))
    return segments


def make_pairs(segments: list[tuple[str, str]], seed: int, impostors_per_client: int = 1):
    """All same-speaker pairs and `impostors_per_client` times as many different-speaker pairs."""
    names = [n for n, _ in segments]
    speakers = np.array([s for _, s in segments])
    first, second = np.triu_indices(len(names), k=1)
    same = speakers[first] == speakers[second]
    clients = [(names[a], names[b]) for a, b in zip(first[same], second[same], strict=True)]
    different = list(zip(first[~same], second[~same], strict=True))
    random.Random(seed).shuffle(different)
    impostors = [(names[a], names[b]) for a, b in different[: impostors_per_client * len(clients)]]
    return clients, impostors


if __name__ == "__main__":
    main()
