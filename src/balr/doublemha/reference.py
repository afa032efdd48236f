"""The reference implementation's model files, read without running code from them.

The authors' training script (see `balr.doublemha`) writes `{model_name}_config.pkl`, a
pickled `argparse.Namespace` of its options, and on every validation improvement
`{model_name}_{step}.chkpt`, a `torch.save` of `model` (state dict), `optimizer`, `settings`
(the same Namespace plus `feature_size`), `epoch` and `step`, in torch 1.5's legacy format or
the zip format of later torch versions. Both are read with allowlists: the checkpoint with
`torch.load(weights_only=True)` plus `argparse.Namespace`, the config with an unpickler that
rebuilds exactly `argparse.Namespace`; settings must be plain values (str, int, float, bool,
None). The settings become a `ModelSettings` and the weights are renamed to balr's modules:

| reference key | balr key | transform |
| --- | --- | --- |
| `front_end.conv{L}{j}.*` | `front_end.blocks.{L-1}.conv{j}.*` | - |
| `poolingLayer.utteranceAttention.query` (hs, H) | `pooling.mha.queries` (H, hs) | q.T / sqrt(H) |
| `poolingLayer.headsAttention.att` (hs, 1) | `pooling.head_query` (hs,) | `att[:, 0]` |
| `poolingLayer.query` (MHA) | `pooling.queries` | `q.T / sqrt(H)` |
| `poolingLayer.att` (Attention) | `pooling.query` | `att[:, 0]` |
| `fc1.*`, `fc2.*`, `b2.*` | `embedding_head.0.*`, `.2.*`, `.4.*` | - |
| `preLayer.*` | `classifier_layer.*` | - |
| `predictionLayer.W` (E, S) | `prediction_layer.weight` (S, E) | transpose |
| `b1.*`, `b3.*` | dropped: the reference's forward never uses them | - |

The reference divides its multi-head attention scores by sqrt(H) (H = heads_number); balr
does not, so the queries are divided once here and the two models give the same scores.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from balr.doublemha.config import ModelSettings
from balr.errors import ModelError

REFERENCE_SUFFIX = ".chkpt"
PLAIN_TYPES = (str, int, float, bool, type(None))
#: the reference's settings that fix the architecture (all are in every reference file)
ARCHITECTURE_KEYS = (
    "front_end",
    "kernel_size",
    "embedding_size",
    "heads_number",
    "pooling_method",
    "scalingFactor",
    "marginFactor",
    "num_spkrs",
)
#: settings with a default when a file predates them; `feature_size` is the reference's n_mels
OPTIONAL_KEYS = {"mask_prob": 0.3, "annealing": False, "normalization": "cmn"}
CONVERSION_HINT = (
    "rename the state dict to the reference's module names (front_end.conv11 ..., "
    "poolingLayer.*, fc1, fc2, b2, preLayer, predictionLayer.W; docs/doublemha.md, "
    "'Reference checkpoints'), or load it in the reference code and save "
    "{'model': net.state_dict(), 'settings': opt} with torch.save"
)


class NamespaceUnpickler(pickle.Unpickler):
    """Rebuilds `argparse.Namespace` and plain values; any other global named in the file is
    refused before it is looked up, so unpickling never runs code from the file."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("argparse", "Namespace"):
            return argparse.Namespace
        raise pickle.UnpicklingError(f"it names the global {module}.{name}")


def read_reference_config(path: str | os.PathLike) -> dict:
    """The options of a reference `{model_name}_config.pkl` (restricted unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model config not found")
    try:
        with open(path, "rb") as handle:
            namespace = NamespaceUnpickler(handle).load()
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{path}: refused, not loaded: not a reference model config "
            f"(a pickled argparse.Namespace of plain values): {detail}"
        ) from None
    return plain_settings(namespace, path)


def plain_settings(namespace: object, path: str | os.PathLike) -> dict:
    """The attributes of a settings Namespace, checked to be plain values."""
    if not isinstance(namespace, argparse.Namespace):
        raise ModelError(
            f"{path}: settings are a {type(namespace).__name__}, not an argparse.Namespace"
        )
    values = vars(namespace)
    for key, value in values.items():
        if not isinstance(value, PLAIN_TYPES):
            raise ModelError(
                f"{path}: setting '{key}' is a {type(value).__name__}, not a plain value"
            )
    return dict(values)


def reference_model_settings(values: dict, path: str | os.PathLike) -> ModelSettings:
    """The balr architecture settings of a reference run's options; features use the
    reference's log-mel recipe (`feature_recipe=reference`)."""
    missing = [key for key in ARCHITECTURE_KEYS if key not in values]
    if missing:
        raise ModelError(f"{path}: the reference settings lack {', '.join(missing)}")
    chosen = {key: values[key] for key in ARCHITECTURE_KEYS}
    chosen.update({key: values.get(key, default) for key, default in OPTIONAL_KEYS.items()})
    return ModelSettings(
        **chosen, n_mels=int(values.get("feature_size", 80)), feature_recipe="reference"
    )


@dataclass(frozen=True)
class Mapping:
    """Where a reference weight goes in balr: its name, a reshape (None: as is) and the
    factor balr's weight is scaled by (a function of the reference tensor; None: 1). The
    optimiser moments of the weight follow the same reshape, divided by the factor once
    (gradient-like) or twice (squared-gradient-like)."""

    name: str
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None
    factor: Callable[[torch.Tensor], float] | None = None

    def weight(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.moment(tensor, power=-1)

    def moment(self, tensor: torch.Tensor, power: int) -> torch.Tensor:
        """`tensor` reshaped and divided by the factor `power` times (-1: the weight)."""
        moved = self.reshape(tensor) if self.reshape else tensor
        if self.factor is not None and power:
            moved = moved / self.factor(tensor) ** power
        return moved.contiguous()


def _inverse_sqrt_heads(query: torch.Tensor) -> float:
    """The reference divides its attention scores by sqrt(H), H the query's columns."""
    return 1 / math.sqrt(query.shape[1])


def _column(att: torch.Tensor) -> torch.Tensor:
    return att[:, 0]


_FRONT_END = re.compile(r"front_end\.conv(\d)([12])\.(weight|bias)")
_RENAMED = {
    "poolingLayer.utteranceAttention.query": Mapping(
        "pooling.mha.queries", torch.t, _inverse_sqrt_heads
    ),
    "poolingLayer.headsAttention.att": Mapping("pooling.head_query", _column),
    "poolingLayer.query": Mapping("pooling.queries", torch.t, _inverse_sqrt_heads),
    "poolingLayer.att": Mapping("pooling.query", _column),
    "predictionLayer.W": Mapping("prediction_layer.weight", torch.t),
}
_PREFIXES = {"fc1": "embedding_head.0", "fc2": "embedding_head.2", "b2": "embedding_head.4"}
_PREFIXES["preLayer"] = "classifier_layer"
_UNUSED = ("b1", "b3")
#: state-dict entries of the reference model that are buffers, not optimised parameters
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
#: optimiser state entries that follow the gradient (1) or its square (2): Adam, SGD, RMSprop
MOMENT_POWER = {
    "exp_avg": 1,
    "momentum_buffer": 1,
    "grad_avg": 1,
    "exp_avg_sq": 2,
    "max_exp_avg_sq": 2,
    "square_avg": 2,
}


def _balr_mapping(key: str) -> Mapping | None:
    """balr's mapping of a reference key; None for unused layers; KeyError for a key the
    reference model does not have."""
    match = _FRONT_END.fullmatch(key)
    if match:
        layer, conv, param = match.groups()
        return Mapping(f"front_end.blocks.{int(layer) - 1}.conv{conv}.{param}")
    if key in _RENAMED:
        return _RENAMED[key]
    prefix, _, rest = key.partition(".")
    if prefix in _UNUSED:
        return None
    if prefix in _PREFIXES and rest:
        return Mapping(f"{_PREFIXES[prefix]}.{rest}")
    raise KeyError(key)


def reference_state_dict(state: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The reference model's weights under balr's module names (see the module docstring)."""
    mapped = {}
    for key, tensor in state.items():
        key = key.removeprefix("module.")  # a model saved inside DataParallel
        try:
            mapping = _balr_mapping(key)
        except KeyError:
            raise ModelError(
                f"{path}: weight '{key}' is not one of the reference model's; {CONVERSION_HINT}"
            ) from None
        if mapping is not None:
            mapped[mapping.name] = mapping.weight(tensor)
    return mapped


def is_reference_payload(payload: object) -> bool:
    """True for a loaded reference checkpoint (its settings are an argparse.Namespace)."""
    return isinstance(payload, dict) and isinstance(payload.get("settings"), argparse.Namespace)


def from_reference_payload(payload: dict, path: str | os.PathLike) -> dict:
    """A loaded reference checkpoint as balr's checkpoint payload: settings as a dict of
    `ModelSettings`, weights renamed. `optimizer` stays empty: the reference numbers its
    optimiser's parameters in its own module order (the unused `b1` and `b3` included), so
    its state is kept as `reference_optimizer` with the parameter names in that order, for
    `optimizer_state_from_reference` once balr's model exists."""
    settings = reference_model_settings(plain_settings(payload["settings"], path), path)
    if not isinstance(payload.get("model"), dict):
        raise ModelError(f"{path}: the reference checkpoint has no 'model' state dict")
    names = [key.removeprefix("module.") for key in payload["model"]]
    return {
        "model": reference_state_dict(payload["model"], path),
        "optimizer": {},
        "reference_optimizer": {
            "state_dict": payload.get("optimizer") or {},
            "parameter_names": [key for key in names if key.rsplit(".", 1)[-1] not in BUFFERS],
        },
        "settings": settings.to_dict(),
        "epoch": int(payload.get("epoch", 0)),
        "step": int(payload.get("step", 0)),
        "state": {"reference_checkpoint": str(path)},
    }


def optimizer_state_from_reference(
    reference: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, path
) -> dict:
    """The reference optimiser's state (`reference_optimizer` of `from_reference_payload`)
    as a state dict for balr's `optimizer` over `model`: each parameter's moments moved to
    balr's numbering and shapes (transposed or sliced as its weight; the attention queries,
    which balr stores divided by sqrt(H), get their first moments times sqrt(H) and second
    moments times H), `b1`/`b3` dropped, and the reference's hyperparameters (its learning
    rate, halved by its schedule) kept."""
    saved = reference["state_dict"]
    names = reference["parameter_names"]
    groups = saved.get("param_groups") or []
    if len(groups) != 1 or len(groups[0].get("params", [])) != len(names):
        raise ModelError(
            f"{path}: the optimiser state does not match the reference model's "
            f"{len(names)} parameters; start without requeue or remove the .chkpt"
        )
    params = dict(model.named_parameters())
    balr_index = {name: i for i, name in enumerate(params)}
    state = {}
    for reference_id, name in zip(groups[0]["params"], names, strict=True):
        mapping = _balr_mapping(name)
        if mapping is None or reference_id not in saved.get("state", {}):
            continue
        shape = params[mapping.name].shape
        state[balr_index[mapping.name]] = {
            key: _moment(value, mapping, MOMENT_POWER.get(key, 0), shape, path, name)
            for key, value in saved["state"][reference_id].items()
        }
    own_group = optimizer.state_dict()["param_groups"][0]
    group = {key: groups[0].get(key, value) for key, value in own_group.items()}
    group["params"] = own_group["params"]
    return {"state": state, "param_groups": [group]}


def _moment(value, mapping: Mapping, power: int, shape, path, name: str):
    """One optimiser state entry in balr's parametrisation (scalars such as `step` as is)."""
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return value
    moved = mapping.moment(value, power)
    if moved.shape != shape:
        raise ModelError(
            f"{path}: optimiser state of '{name}' has shape {tuple(value.shape)}, which does "
            f"not fit the model; start without requeue or remove the .chkpt"
        )
    return moved


def newest_reference_checkpoint(directory: Path) -> Path | None:
    """The reference's best model in an output directory: the `*_{step}.chkpt` with the
    highest step (it saves a checkpoint on every improvement), else the newest `.chkpt`."""
    files = [p for p in directory.glob(f"*{REFERENCE_SUFFIX}") if p.is_file()]
    if not files:
        return None

    def order(file: Path) -> tuple[int, float]:
        step = re.search(r"_(\d+)$", file.stem)
        return (int(step.group(1)) if step else -1, file.stat().st_mtime)

    return max(files, key=order)


def config_mismatches(config: dict, settings: ModelSettings) -> list[str]:
    """`key (config value vs model value)` for each architecture option that differs."""
    model = settings.to_dict()
    return [
        f"{key} ({config[key]!r} vs {model[key]!r})"
        for key in (*ARCHITECTURE_KEYS, *OPTIONAL_KEYS)
        if key in config and config[key] != model[key]
    ]
