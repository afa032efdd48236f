"""The shipped default models (inside the package; rebuilt by recipes/default_models.sh).

Used whenever a command is given no checkpoint: `balr binarize` (BAE), `balr score test`
(scorer + calibration) and `balr compare` (all of them, plus the reference LLRs its
report plots). Paths only; each stage loads its own files safely.
"""

from __future__ import annotations

from pathlib import Path

from balr.errors import ModelError

RESOURCE_DIR = Path(__file__).resolve().parent / "resources" / "defaults"
BAE_CHECKPOINT = RESOURCE_DIR / "bae.safetensors"
SCORER_CHECKPOINT = RESOURCE_DIR / "scorer.safetensors"
TYPICALITY_CHECKPOINT = RESOURCE_DIR / "typicality.safetensors"
CALIBRATION = RESOURCE_DIR / "calibration.json"
COSINE_CALIBRATION = RESOURCE_DIR / "calibration_cosine.json"
REFERENCE_LLRS = RESOURCE_DIR / "reference_llrs.npz"
METRICS = RESOURCE_DIR / "metrics.json"
EMBEDDING_MODEL = "ge2e"


def require(path: Path, what: str) -> Path:
    """`path` if the shipped file exists, else a ModelError saying how to rebuild it."""
    if not path.is_file():
        raise ModelError(
            f"the shipped default {what} ({path}) is missing: rebuild it with "
            "`bash recipes/default_models.sh` or pass a checkpoint explicitly"
        )
    return path
