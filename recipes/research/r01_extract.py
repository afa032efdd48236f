"""Research (issue 13), step 1: GE2E embeddings + durations of every corpus, cached once.

For every recording of ../shared/data (LibriSpeech cut into ~3 s segments as the shipped
recipe does; the 4 speakers of examples/audio excluded) writes, under CACHE/emb/:
  CORPUS.csv  id, corpus, speaker, source (recording the item comes from), language,
              raw_s (item duration), speech_s (webrtc VAD aggressiveness 3, 30 ms frames,
              no pause widening), rms_dbfs
  CORPUS.npy  (n, 256) float32 GE2E embeddings (the default model of `balr extract`:
              no VAD, full item, volume normalisation to -30 dBFS)
Resumable per corpus. Usage: r01_extract.py [--data ../shared/data] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from balr.audio import load_audio
from balr.embeddings.ge2e import GE2EConfig, build
from balr.embeddings.vad import FRAME_S, webrtc_speech_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # recipes/default_models.py
from default_models import segment_bounds  # noqa: E402

SR = 16000
EXAMPLE_SPEAKERS = {"id00906", "id01184", "id03184", "id07531"}


def items(data: Path, corpus: str):
    """(id, speaker, source, language, loader) per item."""
    if corpus == "librispeech":
        for p in sorted((data / "librispeech-train-clean-100-1utt").glob("*.flac")):
            spk = "ls" + p.stem.split("-")[0]

            def get(p=p):
                return load_audio(p, SR)

            yield p, spk, "en", get
    elif corpus == "speechocean":
        meta = pd.read_csv(data / "speechocean762/metadata.csv", dtype=str)
        for r in meta.itertuples():
            yield data / "speechocean762" / r.audio, r.speaker, "en", None
    elif corpus == "commonvoice":
        meta = pd.read_csv(data / "commonvoice-6.1-sample/metadata.csv", dtype=str)
        for r in meta.itertuples():
            yield data / "commonvoice-6.1-sample" / r.audio, r.speaker, r.language, None
    elif corpus == "voxceleb":
        meta = pd.read_csv(data / "voxceleb/voxceleb2/metadata.csv", dtype=str)
        for r in meta.itertuples():
            if r.speaker not in EXAMPLE_SPEAKERS:
                yield data / "voxceleb/voxceleb2" / r.audio, r.speaker, "en", None
        for p in sorted((data / "voxceleb/voxceleb1").glob("*.wav")):
            yield p, p.name.split("+")[0], "en", None


def load_corpus(data: Path, corpus: str):
    rows, waves = [], []
    for path, spk, lang, _ in items(data, corpus):
        wave = load_audio(path, SR)
        if corpus == "librispeech":
            pieces = [
                (f"{spk}/{path.stem}-{k:02d}", wave[int(a * SR) : int(b * SR)])
                for k, (a, b) in enumerate(segment_bounds(len(wave) / SR, 3.0))
            ]
        else:
            pieces = [(f"{spk}/{path.stem}" if corpus == "voxceleb" else path.stem, wave)]
        for item_id, piece in pieces:
            flags = webrtc_speech_frames(piece, SR)
            rms = float(np.sqrt(np.mean(piece.astype(np.float64) ** 2)) + 1e-12)
            rows.append(
                {
                    "id": item_id,
                    "corpus": corpus,
                    "speaker": spk,
                    "source": f"{spk}/{path.stem}",
                    "language": lang,
                    "raw_s": round(len(piece) / SR, 3),
                    "speech_s": round(float(flags.sum()) * FRAME_S, 3),
                    "rms_dbfs": round(20 * np.log10(rms), 2),
                }
            )
            waves.append(piece)
    return pd.DataFrame(rows), waves


@torch.no_grad()
def embed_all(model, waves, max_seconds=120.0):
    order = np.argsort([len(w) for w in waves])
    out = np.zeros((len(waves), 256), np.float32)
    batch: list[int] = []

    def flush():
        if not batch:
            return
        lens = torch.tensor([len(waves[i]) for i in batch])
        pad = torch.zeros(len(batch), int(lens.max()))
        for j, i in enumerate(batch):
            pad[j, : len(waves[i])] = torch.from_numpy(waves[i])
        out[batch] = model.embed(pad, lens).numpy()
        batch.clear()

    for i in order:
        if batch and (len(batch) + 1) * len(waves[i]) / SR > max_seconds:
            flush()
        batch.append(int(i))
    flush()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data"
    )
    ap.add_argument("--cache", type=Path, default=Path("/work/research_cache"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = args.cache / "emb"
    out.mkdir(parents=True, exist_ok=True)
    model = build(GE2EConfig())
    for corpus in ("voxceleb", "librispeech", "speechocean", "commonvoice"):
        if (out / f"{corpus}.npy").is_file():
            print(corpus, "cached")
            continue
        t0 = time.perf_counter()
        frame, waves = load_corpus(args.data, corpus)
        t1 = time.perf_counter()
        emb = embed_all(model, waves)
        t2 = time.perf_counter()
        frame.to_csv(out / f"{corpus}.csv", index=False)
        np.save(out / f"{corpus}.npy", emb)
        print(
            f"{corpus}: {len(frame)} items, {frame.speaker.nunique()} speakers, "
            f"{frame.raw_s.sum() / 3600:.2f} h; decode+vad {t1 - t0:.0f} s, embed {t2 - t1:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
