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
#: weights of the default embedding model (converted from Resemblyzer 0.1.4, Apache-2.0)
GE2E_WEIGHTS = RESOURCE_DIR.parent / "ge2e" / "ge2e.safetensors"


def require(path: Path, what: str) -> Path:
    """`path` if the shipped file exists, else a ModelError saying how to rebuild it."""
    if not path.is_file():
        raise ModelError(
            f"the shipped default {what} ({path}) is missing: rebuild it with "
            "`bash recipes/default_models.sh` or pass a checkpoint explicitly"
        )
    return path


#: scorers shipped fitted on the default reference population, by scorer name
SHIPPED_SCORERS = {"beta": SCORER_CHECKPOINT, "speech": TYPICALITY_CHECKPOINT}


def shipped_scorer(name: str) -> Path | None:
    """The shipped checkpoint of scorer `name` (beta, speech), or None if none is shipped."""
    path = SHIPPED_SCORERS.get(name)
    return require(path, f"'{name}' scorer") if path is not None else None


def shipped_calibration(scorer: str, vectors: str | None = None) -> Path | None:
    """The shipped calibrator of a shipped scorer's scores (beta; cosine of embeddings)."""
    if scorer == "beta":
        return require(CALIBRATION, "calibration of the beta scorer")
    if scorer == "cosine" and vectors == "emb":
        return require(COSINE_CALIBRATION, "calibration of cosine scores of embeddings")
    return None
