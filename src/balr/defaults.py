"""The shipped default models (inside the package; rebuilt by recipes/default_models.sh).

Used whenever a command is given no checkpoint: `balr binarize` (BAE), `balr score test`
(scorer + calibration) and `balr compare` (all of them, plus the reference LLRs its
report plots). Paths only; each stage loads its own files safely.

Tamper evidence: `resources/manifest.json` holds the SHA-256 of every shipped file (written
by `write_manifest`, which the recipe calls after installing the files). A shipped file that
a command picks by default (`require`) must match it; a modified one is refused, unless the
user passes it explicitly (`--calibration PATH`, `scorer.checkpoint_path=PATH`, ...), which
makes it their own model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from balr.errors import ModelError
from balr.fileio import atomic_write_json, sha256_file

RESOURCES = Path(__file__).resolve().parent / "resources"
MANIFEST = RESOURCES / "manifest.json"
RESOURCE_DIR = RESOURCES / "defaults"
BAE_CHECKPOINT = RESOURCE_DIR / "bae.safetensors"
SCORER_CHECKPOINT = RESOURCE_DIR / "scorer.safetensors"
TYPICALITY_CHECKPOINT = RESOURCE_DIR / "typicality.safetensors"
CALIBRATION = RESOURCE_DIR / "calibration.json"
COSINE_CALIBRATION = RESOURCE_DIR / "calibration_cosine.json"
REFERENCE_LLRS = RESOURCE_DIR / "reference_llrs.npz"
METRICS = RESOURCE_DIR / "metrics.json"
CHANNEL_REFERENCE = RESOURCE_DIR / "channel_reference.safetensors"
EMBEDDING_MODEL = "ge2e"
#: weights of the default embedding model (converted from Resemblyzer 0.1.4, Apache-2.0)
GE2E_WEIGHTS = RESOURCE_DIR.parent / "ge2e" / "ge2e.safetensors"


#: how the user passes each shipped model as their own (named in the refusal), by file name
EXPLICIT_OPTIONS = {
    BAE_CHECKPOINT.name: "encoder.model.checkpoint_path=PATH",
    SCORER_CHECKPOINT.name: "scorer.checkpoint_path=PATH",
    TYPICALITY_CHECKPOINT.name: "scorer.checkpoint_path=PATH",
    CALIBRATION.name: "--calibration PATH",
    COSINE_CALIBRATION.name: "--calibration PATH",
    REFERENCE_LLRS.name: "--reference PATH",
    GE2E_WEIGHTS.name: "embeddings.model.weights=PATH",
}


def require(path: Path, what: str) -> Path:
    """`path` if the shipped file exists and matches the manifest (with its conditions
    sidecar, for a calibration), else a ModelError saying why and what to do."""
    if not path.is_file():
        raise ModelError(
            f"the shipped default {what} ({path}) is missing: rebuild it with "
            "`bash recipes/default_models.sh` or pass a checkpoint explicitly"
        )
    return checked(path, what)


def checked(path: Path, what: str) -> Path:
    """`path`, once a shipped file there (and its calibration conditions sidecar) is found
    to match the manifest; a missing file is left to its loader to report."""
    if not path.is_file():
        return path
    option = EXPLICIT_OPTIONS.get(path.name, "its option")
    check_manifest(path, what, option)
    if path.suffix == ".json":
        from balr.conditions import sidecar_path

        if sidecar_path(path).is_file():
            check_manifest(sidecar_path(path), f"{what} (conditions)", option)
    return path


def manifest_key(path: Path) -> str | None:
    """`path` relative to the resources folder (POSIX), None if it is not a shipped file."""
    try:
        return Path(path).resolve().relative_to(RESOURCES).as_posix()
    except ValueError:
        return None


def read_manifest(path: Path | None = None) -> dict[str, str]:
    """The manifest's (default: the shipped one) `relative path -> SHA-256`; ModelError
    when unreadable."""
    path = path or MANIFEST
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"{path}: cannot read the manifest of the shipped models ({exc})"
        ) from None
    if not isinstance(files, dict):
        raise ModelError(f"{path}: 'files' must map paths to SHA-256 hashes")
    return files


#: SHA-256 of shipped files already checked in this process, by (path, size, mtime)
_CHECKED: dict[tuple[str, int, int], str] = {}


def check_manifest(path: Path, what: str, option: str) -> None:
    """ModelError when the shipped file `path` differs from its manifest entry (files
    outside the resources folder, e.g. redirected in tests, are not shipped: no check)."""
    key = manifest_key(path)
    if key is None:
        return
    expected = read_manifest().get(key)
    stat = os.stat(path)
    stamp = (str(path), stat.st_size, stat.st_mtime_ns)
    if stamp not in _CHECKED:
        _CHECKED[stamp] = sha256_file(path)
    if expected is None or _CHECKED[stamp] != expected:
        state = "is not in" if expected is None else "differs from"
        raise ModelError(
            f"the shipped default {what} ({path}) {state} the manifest {MANIFEST.name} "
            f"(SHA-256 {_CHECKED[stamp][:12]}...): reinstall balr, or pass it explicitly "
            f"with {option} to use it as your own model"
        )


def write_manifest(resources: Path = RESOURCES) -> Path:
    """Write `manifest.json`: the SHA-256 of every file under `resources` (but itself)."""
    manifest = resources / MANIFEST.name
    files = {
        path.relative_to(resources).as_posix(): sha256_file(path)
        for path in sorted(resources.rglob("*"))
        if path.is_file() and path != manifest and not path.name.startswith(".")
    }
    atomic_write_json(manifest, {"algorithm": "sha256", "files": files})
    return manifest


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
