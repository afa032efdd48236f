"""Damaged copies of model files for `test_model_file_fuzz`: truncated, bit-flipped, a
tensor with NaN / inf / another shape / deleted / renamed, safetensors metadata or JSON
fields deleted, renamed or replaced by a value of the wrong type."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

#: writes a damaged copy of `intact` to `out` (`tensors_key`: where a torch file keeps them)
Damage = Callable[[Path, Path, "str | None"], None]


def read_tensors(path: Path, tensors_key: str | None) -> tuple[dict, Any]:
    """`(name -> array or tensor, what else the file holds)` of a safetensors, NPZ or torch
    file; `write_tensors` puts them back."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), "numpy") as handle:
            metadata = handle.metadata()
        return load_file(str(path)), metadata
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}, None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return dict(payload[tensors_key] if tensors_key else payload), payload


def write_tensors(path: Path, tensors: dict, extra: Any, tensors_key: str | None) -> None:
    if path.suffix == ".safetensors":
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), extra)
    elif path.suffix == ".npz":
        np.savez(path, **tensors)
    else:
        torch.save({**extra, tensors_key: tensors} if tensors_key else tensors, path)


def float_names(tensors: dict) -> list[str]:
    return sorted(
        k
        for k, v in tensors.items()
        if (v.is_floating_point() if isinstance(v, torch.Tensor) else v.dtype.kind == "f")
    )


def with_value(array: Any, value: float) -> Any:
    array = array.clone() if isinstance(array, torch.Tensor) else array.copy()
    array.reshape(-1)[0] = value
    return array


def tensor_damage(kind: str) -> Damage:
    """Rewrite the intact file with one float tensor changed (`kind`: nan, inf, shape,
    deleted, renamed)."""

    def damage(intact: Path, out: Path, tensors_key: str | None) -> None:
        tensors, extra = read_tensors(intact, tensors_key)
        names = float_names(tensors)
        name = names[-1] if kind in ("inf", "renamed") else names[0]
        value = tensors[name]
        if kind in ("nan", "inf"):
            tensors[name] = with_value(value, float(kind))
        elif kind == "shape":
            tensors[name] = value[..., :-1]
            if isinstance(value, torch.Tensor):
                tensors[name] = tensors[name].contiguous()
        elif kind == "deleted":
            del tensors[name]
        else:
            tensors[name + "_renamed"] = tensors.pop(name)
        write_tensors(out, tensors, extra, tensors_key)

    return damage


def metadata_damage(key: str, kind: str, inner: str | None = None) -> Damage:
    """Rewrite a safetensors file with metadata `key` (or field `inner` of its JSON value)
    deleted, renamed or replaced by the text `kind`."""

    def damage(intact: Path, out: Path, tensors_key: str | None) -> None:
        tensors, metadata = read_tensors(intact, None)
        metadata = dict(metadata)
        if inner is not None:
            params = json.loads(metadata[key])
            mutate(params, (inner,), kind)
            metadata[key] = json.dumps(params)
        elif kind == "deleted":
            del metadata[key]
        elif kind == "renamed":
            metadata[key + "_renamed"] = metadata.pop(key)
        else:
            metadata[key] = kind
        write_tensors(out, tensors, metadata, None)

    return damage


REPLACEMENTS = {"nan": float("nan"), "abc": "abc", "null": None, "number": 3, "list": [1]}


def mutate(record: Any, where: tuple, kind: str) -> None:
    """Change the JSON value at `where` (keys / indices): deleted, renamed or replaced."""
    *parents, last = where
    for key in parents:
        record = record[key]
    if kind == "deleted":
        del record[last]
    elif kind == "renamed":
        record[f"{last}_renamed"] = record.pop(last)
    else:
        record[last] = REPLACEMENTS[kind]


def json_damage(where: tuple, kind: str) -> Damage:
    def damage(intact: Path, out: Path, tensors_key: str | None) -> None:
        record = json.loads(intact.read_text())
        mutate(record, where, kind)
        out.write_text(json.dumps(record))

    return damage


def byte_damage(kind: str, seed: int = 0) -> Damage:
    """truncated (half, or 12 bytes), empty, a flipped bit in the format's first bytes (the
    safetensors header length, the JSON's `{`, the zip signature), or 4 random flipped bits."""

    def damage(intact: Path, out: Path, tensors_key: str | None) -> None:
        data = bytearray(intact.read_bytes())
        if kind == "truncated-half":
            data = data[: len(data) // 2]
        elif kind == "truncated-12":
            data = data[:12]
        elif kind == "empty":
            data = bytearray()
        elif kind == "magic-flip":
            index = 7 if intact.suffix == ".safetensors" else len(data) - len(data.lstrip())
            data[index] ^= 0x40 if intact.suffix == ".safetensors" else 0x01
        else:
            rng = random.Random(seed)
            for _ in range(4):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        out.write_bytes(bytes(data))

    return damage
