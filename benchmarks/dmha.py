"""DoubleMHA extractor speed on CPU: training steps/s and embedding real-time factor.

Two configurations: a small one (VGG3L, kernel 128, 8 heads, embedding 128) and the default
of `balr.doublemha.config` (VGG4L, kernel 1024, 32 heads, embedding 400, the reference
implementation's). The default is heavy on CPU, so it runs few steps on a small batch (the
reference trains with 64 x 2): its steps/s is for that small batch; samples/s is the
comparable figure.

    python benchmarks/dmha.py [--threads 2] [--out benchmarks/results/dmha.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, write_results  # noqa: E402

from balr.doublemha import ModelSettings, SpeakerClassifier, embed_waves  # noqa: E402
from balr.doublemha.features import SAMPLE_RATE  # noqa: E402

CONFIGS = {
    "small": dict(
        settings=dict(front_end="VGG3L", kernel_size=128, heads_number=8, embedding_size=128),
        batch=16,
        steps=4,
    ),
    "seed_default": dict(  # the defaults of balr.doublemha.config (the reference's)
        settings=dict(front_end="VGG4L", kernel_size=1024, heads_number=32, embedding_size=400),
        batch=2,
        steps=2,
    ),
}
WINDOW_FRAMES = 350  # the default 3.5 s training windows
SPEAKERS = 1000


def training_rate(model: SpeakerClassifier, batch: int, steps: int) -> dict:
    """Full training steps (forward, AM-softmax loss, backward, Adam) per second."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3)
    feats = torch.randn(batch, WINDOW_FRAMES, 80)
    labels = torch.randint(0, SPEAKERS, (batch,))
    model.train()

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(feats, labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {
        "batch": batch,
        "window_s": WINDOW_FRAMES / 100,
        "steps_per_s": round(1 / seconds, 4),
        "samples_per_s": round(batch / seconds, 2),
    }


@torch.no_grad()
def embedding_rtf(model: SpeakerClassifier, seconds: float = 10.0, repeats: int = 2) -> dict:
    """Processing time / audio duration for one utterance, features included."""
    model.eval()
    wave = torch.randn(1, int(seconds * SAMPLE_RATE)) * 0.1
    embed_waves(model, wave)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        embed_waves(model, wave)
    elapsed = (time.perf_counter() - start) / repeats
    return {"audio_s": seconds, "rtf": round(elapsed / seconds, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results: dict = {"threads": args.threads}
    for name in args.configs:
        spec = CONFIGS[name]
        model = SpeakerClassifier(ModelSettings(num_spkrs=SPEAKERS, **spec["settings"]))
        figures = {
            "parameters": sum(p.numel() for p in model.parameters()),
            **spec["settings"],
            "train": training_rate(model, spec["batch"], spec["steps"]),
            "embed": embedding_rtf(model),
        }
        results[name] = figures
        print(
            f"{name}: {figures['parameters']:,} parameters; train "
            f"{figures['train']['steps_per_s']} steps/s (batch {spec['batch']}, 3.5 s windows, "
            f"{figures['train']['samples_per_s']} samples/s); embedding RTF "
            f"{figures['embed']['rtf']} (10 s utterance)",
            flush=True,
        )
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_results("dmha", results, args.out)


if __name__ == "__main__":
    main()
