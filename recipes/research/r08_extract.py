"""Research (issue 18), step 1: GE2E embeddings of every corpus and of channel variants of
the held-out (test-part) recordings, cached once.

Originals: exactly r01_extract's items and embeddings (CACHE/emb/CORPUS.csv + .npy, the
r01 format, so r02-r07 read them), with one more column `speech_balr`: the net speech
seconds `balr extract` writes today (`balr.embeddings.vad.measure_speech`: WebRTC at
aggressiveness 3 after bringing loud frames to -20 dBFS); the shipped qmf calibration was
fitted on those. Then CACHE/splits.csv (r02's seeded speaker splits).
Variants (r08_channels.apply_channel) of every test-part item of every corpus:
CACHE/r08/VARIANT/CORPUS.csv (the test rows of CACHE/emb/CORPUS.csv, with `speech_balr`
and `rms_dbfs` of the variant) + .npy (GE2E embeddings of the variant, row-aligned).
Long recordings (original channel) of the test speakers, for the warning study:
CACHE/r08/long/CORPUS.csv + .npy: LibriSpeech: each test speaker's whole utterance (one
per speaker, 1.6-17 s); speechocean762: each test speaker's 12 sentences (sorted by id)
concatenated in two halves (two ~24 s recordings per speaker); Common Voice: test speakers
with 4+ clips, the clips concatenated in two halves.
Channel profiles (r07_domain_detectors.channel_profile: 96 values) of every item:
CACHE/r08/orig/CORPUS_profile.npy, CACHE/r08/VARIANT/CORPUS_profile.npy (row-aligned).
Resumable per corpus and variant.
Usage: r08_extract.py [--data ../shared/data] [--cache DIR] [--variants telephone hall]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from channel_variants import VARIANTS, apply_channel  # noqa: E402
from r01_extract import embed_all, items, load_corpus  # noqa: E402
from r02_splits import SIZES, split  # noqa: E402
from r07_domain_detectors import channel_profile  # noqa: E402

from balr.audio import load_audio  # noqa: E402
from balr.embeddings.ge2e import GE2EConfig, build  # noqa: E402
from balr.embeddings.vad import measure_speech  # noqa: E402

SR = 16000
CORPORA = ("voxceleb", "librispeech", "speechocean", "commonvoice")


def profiles(waves) -> np.ndarray:
    """r07's 96-value channel profile of each wave (mel-band shape, spread, noise floor)."""
    return np.stack([channel_profile(w) for w in waves])


def test_rows(frame: pd.DataFrame, corpus: str) -> np.ndarray:
    parts = split(frame.speaker.unique(), SIZES[corpus])
    return np.flatnonzero(frame.speaker.isin(parts["test"]).to_numpy())


def long_recordings(args, model):
    out = args.cache / "r08" / "long"
    out.mkdir(parents=True, exist_ok=True)
    for corpus in ("librispeech", "speechocean", "commonvoice"):
        if (out / f"{corpus}.npy").is_file():
            print(f"long {corpus} cached", flush=True)
            continue
        t0 = time.perf_counter()
        found = [(p, spk, lang) for p, spk, lang, _ in items(args.data, corpus)]
        speakers = sorted({spk for _, spk, _ in found})
        test = set(split(speakers, SIZES[corpus])["test"])
        rows, waves = [], []
        for spk in sorted(test):
            mine = sorted((p for p, s, _ in found if s == spk), key=lambda p: p.stem)
            lang = next(la for _, s, la in found if s == spk)
            if corpus == "librispeech":
                groups = [mine]
            elif len(mine) >= 4:
                half = len(mine) // 2
                groups = [mine[:half], mine[half:]]
            else:
                continue
            for k, group in enumerate(groups):
                wave = np.concatenate([load_audio(p, SR) for p in group])
                rows.append({
                    "id": f"long:{spk}/{k}", "corpus": corpus, "speaker": spk,
                    "source": "+".join(p.stem for p in group), "language": lang,
                    "raw_s": round(len(wave) / SR, 3),
                    "speech_balr": measure_speech(wave, SR).speech_s,
                    "rms_dbfs": round(20 * np.log10(np.sqrt(np.mean(wave.astype(np.float64) ** 2)) + 1e-12), 2),
                })  # fmt: skip
                waves.append(wave)
        emb = embed_all(model, waves)
        pd.DataFrame(rows).to_csv(out / f"{corpus}.csv", index=False)
        np.save(out / f"{corpus}.npy", emb)
        np.save(out / f"{corpus}_profile.npy", profiles(waves))
        print(
            f"long {corpus}: {len(rows)} recordings, {time.perf_counter() - t0:.0f} s", flush=True
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data"
    )
    ap.add_argument("--cache", type=Path, default=Path("/work/research_cache"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    emb_dir = args.cache / "emb"
    emb_dir.mkdir(parents=True, exist_ok=True)
    model = build(GE2EConfig())
    for corpus in CORPORA:
        todo = [
            v for v in args.variants if not (args.cache / "r08" / v / f"{corpus}.npy").is_file()
        ]
        have = (emb_dir / f"{corpus}.npy").is_file()
        if have and not todo:
            print(corpus, "cached", flush=True)
            continue
        t0 = time.perf_counter()
        frame, waves = load_corpus(args.data, corpus)
        print(
            f"{corpus}: decoded {len(frame)} items in {time.perf_counter() - t0:.0f} s", flush=True
        )
        if not have:
            t1 = time.perf_counter()
            frame["speech_balr"] = [measure_speech(w, SR).speech_s for w in waves]
            emb = embed_all(model, waves)
            frame.to_csv(emb_dir / f"{corpus}.csv", index=False)
            np.save(emb_dir / f"{corpus}.npy", emb)
            (args.cache / "r08" / "orig").mkdir(parents=True, exist_ok=True)
            np.save(args.cache / "r08" / "orig" / f"{corpus}_profile.npy", profiles(waves))
            print(f"  originals embedded in {time.perf_counter() - t1:.0f} s", flush=True)
        frame = pd.read_csv(emb_dir / f"{corpus}.csv", dtype={"id": str, "speaker": str})
        rows = test_rows(frame, corpus)
        for variant in todo:
            t1 = time.perf_counter()
            out = args.cache / "r08" / variant
            out.mkdir(parents=True, exist_ok=True)
            sub = frame.iloc[rows].copy()
            vw = [apply_channel(waves[r], variant, frame.id[r]) for r in rows]
            t2 = time.perf_counter()
            sub["speech_balr"] = [measure_speech(w, SR).speech_s for w in vw]
            sub["rms_dbfs"] = [
                round(20 * np.log10(np.sqrt(np.mean(w.astype(np.float64) ** 2)) + 1e-12), 2)
                for w in vw
            ]
            emb = embed_all(model, vw)
            sub.to_csv(out / f"{corpus}.csv", index=False)
            np.save(out / f"{corpus}.npy", emb)
            np.save(out / f"{corpus}_profile.npy", profiles(vw))
            print(
                f"  {variant}: {len(rows)} test items, channel {t2 - t1:.0f} s, "
                f"vad+embed {time.perf_counter() - t2:.0f} s",
                flush=True,
            )
        del waves
    long_recordings(args, model)
    # the seeded splits (r02_splits.main without its printout)
    split_rows = []
    for corpus, sizes in SIZES.items():
        f = pd.read_csv(emb_dir / f"{corpus}.csv", dtype={"speaker": str})
        for part, spk in split(f.speaker.unique(), sizes).items():
            split_rows += [{"corpus": corpus, "speaker": s, "part": part} for s in spk]
    pd.DataFrame(split_rows).to_csv(args.cache / "splits.csv", index=False)
    print("splits written", flush=True)


if __name__ == "__main__":
    main()
