"""Same-recording detection (`balr.audio_identity`): false alarms on genuine different
recordings of one speaker, and detection of generated near-duplicates.

False alarms: every pair of different recordings of the same speaker (all pairs within each
speaker) of speechocean762 (16 kHz Ogg Opus, lossy) and the VoxCeleb2 clips, and with
`--corpora` Common Voice (Opus too), each recording fingerprinted once. Detection: for a
fixed random sample of recordings, each kind of near-duplicate (a trim, a gain change, a
re-encode, a one-sample edit, a 10 ms trim, the same samples in another container)
compared with its original. Prints the rates at the shipped threshold, the similarity
quantiles of both, and writes JSON (default benchmarks/results/same_recording.json).

    python benchmarks/same_recording.py [--data /work/shared/data] [--max-speakers 0]
        [--corpora speechocean762 voxceleb2 commonvoice] [--duplicates 100]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from balr.audio import load_audio  # noqa: E402
from balr.audio_identity import (  # noqa: E402
    IDENTITY_RATE,
    NEAR_DUPLICATE_THRESHOLD,
    AudioIdentity,
    identify_wave,
    same_recording,
    similarity,
)

SR = IDENTITY_RATE
CORPORA = {  # metadata.csv (id, audio, speaker) of each corpus, relative to --data
    "speechocean762": "speechocean762",
    "commonvoice": "commonvoice-6.1-sample",
    "voxceleb2": "voxceleb/voxceleb2",
}
QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


def recordings(data: Path, corpora: list[str], max_speakers: int) -> pd.DataFrame:
    """`corpus, path, speaker` of every recording of a speaker with 2+ recordings."""
    frames = []
    for corpus in corpora:
        folder = CORPORA[corpus]
        meta = data / folder / "metadata.csv"
        if not meta.is_file():
            print(f"{corpus}: {meta} not found, skipped")
            continue
        table = pd.read_csv(meta, dtype=str)
        table = table[table.groupby("speaker")["id"].transform("size") >= 2]
        if max_speakers:
            keep = sorted(table.speaker.unique())[:max_speakers]
            table = table[table.speaker.isin(keep)]
        frames.append(
            pd.DataFrame(
                {
                    "corpus": corpus,
                    "path": [str(data / folder / a) for a in table.audio],
                    "speaker": corpus + ":" + table.speaker,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def wav_bytes(wave: np.ndarray, fmt: str, subtype: str) -> np.ndarray:
    """`wave` written in memory as `fmt`/`subtype` and decoded back at SR."""
    buffer = io.BytesIO()
    sf.write(buffer, wave, SR, format=fmt, subtype=subtype)
    buffer.seek(0)
    decoded, rate = sf.read(buffer, dtype="float32")
    assert rate == SR
    return decoded


def near_duplicates(rng: random.Random) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The kinds of near-duplicate, each a function of the original waveform."""

    def trim(w: np.ndarray) -> np.ndarray:
        start = rng.randint(int(0.2 * SR), int(1.0 * SR))
        stop = len(w) - rng.randint(0, int(0.5 * SR))
        return w[start:stop]

    def one_sample(w: np.ndarray) -> np.ndarray:
        edited = w.copy()
        edited[rng.randrange(len(w))] += 0.25
        return edited

    return {
        "container (16-bit FLAC of the same samples)": lambda w: wav_bytes(w, "FLAC", "PCM_16"),
        "one-sample edit": one_sample,
        "10 ms trim": lambda w: w[int(0.010 * SR) :],
        "7 ms trim (off the 10 ms frame grid)": lambda w: w[int(0.007 * SR) :],
        "trim (0.2-1 s at the start, up to 0.5 s at the end)": trim,
        "gain -12 dB": lambda w: w * 10 ** (-12 / 20),
        "gain +6 dB (clipped)": lambda w: np.clip(w * 2.0, -1.0, 1.0),
        "re-encode Ogg Opus": lambda w: wav_bytes(w, "OGG", "OPUS"),
        "re-encode MP3": lambda w: wav_bytes(w, "MP3", "MPEG_LAYER_III"),
        "re-encode Ogg Vorbis + 1 s trim": lambda w: wav_bytes(w[SR:], "OGG", "VORBIS"),
    }


def false_alarms(table: pd.DataFrame, ids: list[AudioIdentity]) -> dict:
    """Similarity of every within-speaker pair of different recordings."""
    values, alarms, by_corpus = [], [], {}
    for (corpus, _), group in table.groupby(["corpus", "speaker"]):
        for i, j in combinations(group.index, 2):
            value = similarity(ids[i], ids[j])
            values.append(value)
            by_corpus[corpus] = by_corpus.get(corpus, 0) + 1
            if same_recording(ids[i], ids[j]) is not None:
                alarms.append([table.path[i], table.path[j], round(value, 3)])
    values = np.array(values)
    return {
        "pairs": len(values),
        "pairs_by_corpus": by_corpus,
        "false_alarms": len(alarms),
        "false_alarm_rate": len(alarms) / max(len(values), 1),
        "similarity_quantiles": {
            str(q): round(float(np.quantile(values, q)), 3) for q in QUANTILES
        },
        "alarm_pairs": alarms[:20],
    }


def detections(table: pd.DataFrame, count: int, seed: int) -> dict:
    """Detection rate of each kind of near-duplicate of `count` sampled recordings."""
    rng = random.Random(seed)
    sample = rng.sample(list(table.path), min(count, len(table)))
    kinds = near_duplicates(rng)
    found = {kind: [] for kind in kinds}
    for path in sample:
        wave = load_audio(path, SR)
        original = identify_wave(wave)
        for kind, make in kinds.items():
            copy = identify_wave(np.asarray(make(wave), np.float32))
            verdict = same_recording(original, copy)
            found[kind].append(verdict.similarity if verdict else similarity(original, copy))
    results = {}
    for kind, values in found.items():
        values = np.array(values)
        hit = values >= NEAR_DUPLICATE_THRESHOLD
        results[kind] = {
            "n": len(values),
            "detected": int(hit.sum()),
            "detection_rate": float(hit.mean()),
            "min_similarity": round(float(values.min()), 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument(
        "--corpora",
        nargs="+",
        choices=list(CORPORA),
        default=["speechocean762", "voxceleb2"],
        help="default: speechocean762 (16,500 pairs) and voxceleb2, a few minutes",
    )
    parser.add_argument("--max-speakers", type=int, default=0, help="per corpus; 0: all")
    parser.add_argument("--duplicates", type=int, default=100, help="recordings duplicated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    table = recordings(args.data, args.corpora, args.max_speakers)
    start = time.perf_counter()
    ids = [identify_wave(load_audio(p, SR)) for p in table.path]
    seconds = {"fingerprint": time.perf_counter() - start}
    print(f"{len(table)} recordings fingerprinted in {seconds['fingerprint']:.1f} s")
    start = time.perf_counter()
    genuine = false_alarms(table, ids)
    seconds["compare"] = time.perf_counter() - start
    print(
        f"different recordings of one speaker: {genuine['false_alarms']} false alarms in "
        f"{genuine['pairs']} pairs ({100 * genuine['false_alarm_rate']:.4f} %), "
        f"{seconds['compare']:.1f} s; similarity quantiles {genuine['similarity_quantiles']}"
    )
    detected = detections(table, args.duplicates, args.seed)
    for kind, row in detected.items():
        print(
            f"{kind}: {row['detected']}/{row['n']} detected "
            f"({100 * row['detection_rate']:.1f} %), min similarity {row['min_similarity']}"
        )
    write_results(
        "same_recording",
        {
            "threshold": NEAR_DUPLICATE_THRESHOLD,
            "recordings": len(table),
            "recordings_by_corpus": table.corpus.value_counts().to_dict(),
            "different_recordings_same_speaker": genuine,
            "near_duplicates": detected,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
