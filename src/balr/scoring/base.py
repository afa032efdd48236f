"""The scorer interface: fit on speaker statistics, score count tensors, save/load safely.

Shapes: statistics are `(speakers, attributes, states)` sums of BA count vectors (states = 2
for bits: `[activations, non-activations]`); a trial side is `(trials, attributes, states)`.
Every scorer is an estimator: hyper-parameters (with their defaults) in `__init__`, `fit`
returns the scorer, learned state lives in attributes ending in `_`, `save(path)` and the
classmethod `load(path)`. A checkpoint is safetensors (hyper-parameters as JSON in the file's
metadata) or a plain `.pt` state dict read with `weights_only=True`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from balr import records
from balr.data.vectors import bits_to_counts
from balr.errors import ConfigError, DataError, ModelError, TrialsError, load_failure_reason
from balr.estimator import Estimator
from balr.fileio import atomic_path
from balr.reference_paths import resolve_reference_path
from balr.scoring.pairs import BitPairs, Pairs, as_bits, is_single_recording

CHECKPOINT_NAME = "scorer.safetensors"
_TINY = np.finfo(np.float64).tiny


class Scorer(Estimator):
    """Base of all scorers: `fit(stats)`, `score(enroll, test)`, `save(path)`, `load(path)`."""

    name: ClassVar[str] = ""
    #: learned attributes (ending in `_`) saved with the scorer
    state_names: ClassVar[tuple[str, ...]] = ()
    #: hyper-parameters that only act at scoring time (may be changed on a fitted scorer)
    scoring_params: ClassVar[tuple[str, ...]] = ()
    #: whether `fit` learns from speaker statistics (False: nothing to fit)
    needs_fit: ClassVar[bool] = True
    #: whether a trial side may be several recordings (their vectors are summed)
    multi_recording: ClassVar[bool] = True
    #: dimensions of each learned array other than 1-D `(attributes,)` (checked on load)
    state_ndims: ClassVar[dict[str, int]] = {}
    #: whether every learned array holds probabilities in [0, 1] (checked on load)
    probability_state: ClassVar[bool] = False

    @property
    def vector_kind(self) -> str:
        """The dataset vectors it scores: `ba` (binary attributes) or `emb` (embeddings)."""
        return "ba"

    def _fitted_names(self) -> tuple[str, ...]:
        return self.state_names

    @property
    def estimator_label(self) -> str:  # type: ignore[override]
        return f"scorer '{self.name}'"

    saved_as: ClassVar[str] = "a checkpoint"

    def fit(self, stats: np.ndarray) -> Scorer:
        """Learn the scorer's parameters from `(speakers, attributes, states)` statistics."""
        raise NotImplementedError

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """One score per trial from two `(trials, attributes, states)` count tensors."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fast paths
    def cell_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Per-recording vectors as a trial side sums them (here: BA counts)."""
        return as_counts(vectors)

    def score_cells(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Scores of summed trial sides (from `cell_vectors`) by the fastest exact path."""
        return self.score(enroll, test)

    def pairs(self, vectors: np.ndarray) -> Pairs | None:
        """Single-recording scoring of pairs of rows of `vectors` (`balr.scoring.pairs`), or
        None when the vectors need the summed-cells path."""
        return None

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        self.check_fitted()
        return {n: np.ascontiguousarray(getattr(self, n)) for n in self.state_names}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the scorer (`.safetensors`, or `.pt` plain state dict) atomically."""
        self.check_fitted()
        path = Path(path)
        if path.suffix not in (".safetensors", ".pt"):
            path = path / CHECKPOINT_NAME
        header = {"scorer": self.name, "params": json.dumps(self.get_params())}
        with atomic_path(path) as tmp:
            if path.suffix == ".pt":
                import torch  # only for the reference's .pt format

                tensors = {k: torch.from_numpy(v) for k, v in self.state_dict().items()}
                torch.save({**header, "state": tensors}, tmp)
            else:
                save_file(self.state_dict(), str(tmp), metadata=header)
        return path

    @classmethod
    def from_state(cls, params: dict[str, Any], state: dict[str, np.ndarray]) -> Scorer:
        """Build a fitted scorer from hyper-parameters and learned arrays."""
        scorer = cls(**params)
        for key, value in state.items():
            if key in cls.state_names:
                setattr(scorer, key, np.asarray(value, dtype=np.float64))
        return scorer

    @classmethod
    def checked_params(cls, path: str | os.PathLike, params: Any) -> dict[str, Any]:
        """The checkpoint's hyper-parameters when each is one of `__init__`'s, of the type of
        its default; ModelError naming the field otherwise."""
        if not isinstance(params, Mapping):
            raise records.fail(path, "params", f"must be a mapping, got {type(params).__name__}")
        defaults = {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self"
        }
        for key, value in params.items():
            field = f"params.{key}"
            if key not in defaults:
                raise records.fail(path, field, f"is not a setting of the '{cls.name}' scorer")
            if isinstance(defaults[key], bool):
                records.read_bool(params, key, path, field=field)
            elif isinstance(defaults[key], int | float):
                records.check_number(value, path, field, integer=isinstance(defaults[key], int))
            elif isinstance(defaults[key], str):
                records.read_str(params, key, path, field=field)
        return dict(params)

    @classmethod
    def check_state(cls, path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> None:
        """ModelError naming the array of `state` that is not finite, has another number of
        dimensions than `state_ndims` says, disagrees on the number of attributes, or (with
        `probability_state`) holds a value outside [0, 1]."""
        arrays = {n: state[n] for n in cls.state_names if n in state}
        for name, array in arrays.items():
            records.check_finite(path, name, array)
            records.check_shape(path, name, array, [records.ANY] * cls.state_ndims.get(name, 1))
        if arrays:
            records.check_same_size(
                path, {n: int(np.shape(a)[0]) for n, a in arrays.items()}, "number of attributes"
            )
        if cls.probability_state:
            for name, array in arrays.items():
                records.check_unit_interval(path, name, array)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Scorer:
        """A fitted scorer from a checkpoint, of the class named in it; ModelError when it
        holds no learned state or another kind of scorer than `cls`."""
        name, params, state = read_checkpoint(path)
        known = {c.name: c for c in _with_subclasses(Scorer) if c.name}
        if name not in known:
            raise ModelError(f"{path}: unknown scorer '{name}' in checkpoint")
        if not issubclass(known[name], cls):
            raise ModelError(f"{path}: holds a '{name}' scorer, not a {cls.__name__}")
        params = known[name].checked_params(path, params)
        known[name].check_state(path, state)
        try:
            scorer = known[name].from_state(params, state)
        except (DataError, ConfigError) as exc:  # a setting out of range
            raise records.fail(path, "params", f"is not valid ({exc})") from None
        if not scorer.is_fitted:
            missing = [n for n in scorer.state_names if n not in state]
            raise ModelError(
                f"{path}: scorer '{name}' is not fitted (missing {', '.join(missing)})"
            )
        return scorer


class LRScorer(Scorer):
    """A likelihood-ratio scorer: `log LR = sum_i term_i`, the terms are its explanation."""

    #: parameter arrays shown next to each attribute in explanations
    explain_names: ClassVar[tuple[str, ...]] = ()

    def log_lr_terms(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Direct formula: `(trials, attributes)` per-attribute natural-log LRs."""
        raise NotImplementedError

    def explain(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Per-attribute log-LR terms of each trial; they sum exactly to `score`."""
        self.check_fitted()
        enroll, test = check_counts(enroll, test, self.n_attributes)
        return self.log_lr_terms(enroll, test)

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return self.explain(enroll, test).sum(axis=1)

    def cell_terms(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """`explain` of summed trial sides by the fastest exact path (here: `explain`)."""
        return self.explain(enroll, test)

    def score_cells(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return self.cell_terms(enroll, test).sum(axis=1)

    def pairs(self, vectors: np.ndarray) -> BitPairs | None:
        """Bilinear lookups over the bits when every row is one recording's bits; None (the
        direct path) where a bit pair's log-LR is infinite (a reference file with a
        probability at exactly 0 or 1), which a bilinear form cannot carry."""
        self.check_fitted()
        if not is_single_recording(vectors):
            return None
        table = self.bit_table()
        if not np.all(np.isfinite(table)):
            return None
        return BitPairs(table, as_bits(vectors))

    @property
    def n_attributes(self) -> int:
        self.check_fitted()
        return int(np.shape(getattr(self, self.state_names[0]))[0])

    def attribute_parameters(self) -> dict[str, np.ndarray]:
        """Fitted per-attribute parameters, named, for explanations."""
        self.check_fitted()
        params: dict[str, np.ndarray] = {}
        for name in self.explain_names:
            value = np.asarray(getattr(self, name + "_"))
            if value.ndim == 2:
                for k in range(value.shape[1]):
                    params[f"{name}_{k}"] = value[:, k]
            else:
                params[name] = value
        return params

    def bit_table(self) -> np.ndarray:
        """`(attributes, 2, 2)` log-LR of each attribute for bits `(e, t)` of one recording each.

        With one recording per side every scorer reduces to this table, which makes a trial
        score bilinear in the two bit vectors (see `balr.scoring.pairs`).
        """
        self.check_fitted()
        k = self.n_attributes
        table = np.empty((k, 2, 2))
        for e in (0, 1):
            for t in (0, 1):
                table[:, e, t] = self.log_lr_terms(one_recording(e, k), one_recording(t, k))[0]
        return table


def _with_subclasses(cls: type[Scorer]) -> list[type[Scorer]]:
    """`cls` and every class derived from it, at any depth."""
    return [cls, *(c for sub in cls.__subclasses__() for c in _with_subclasses(sub))]


def one_recording(bit: int, n_attributes: int) -> np.ndarray:
    """Counts `(1, attributes, 2)` of one recording whose every attribute has value `bit`."""
    return bits_to_counts(np.full((1, n_attributes), float(bit)))


def as_counts(values: np.ndarray) -> np.ndarray:
    """float64 `(trials, attributes, states)`; a 2-D array of bits becomes `[b, 1 - b]` counts."""
    values = np.asarray(values, dtype=np.float64)
    return bits_to_counts(values) if values.ndim == 2 else values


def check_counts(
    enroll: np.ndarray, test: np.ndarray, n_attributes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as float64 `(trials, attributes, states)` with matching shapes."""
    enroll, test = as_counts(enroll), as_counts(test)
    if enroll.ndim != 3 or enroll.shape != test.shape:
        raise DataError(
            f"enrollment {enroll.shape} and test {test.shape} counts must both be "
            "(trials, attributes, states)"
        )
    if enroll.shape[1] != n_attributes:
        raise DataError(
            f"vectors have {enroll.shape[1]} attributes, the scorer was fitted on {n_attributes}"
        )
    return enroll, test


def check_single_recording(enroll: np.ndarray, test: np.ndarray, scorer: str) -> None:
    """TrialsError unless each side of each trial is exactly one recording (counts sum to 1)."""
    for side, counts in (("enrollment", enroll), ("test", test)):
        totals = counts.sum(axis=2)
        bad = np.flatnonzero(np.any(np.abs(totals - 1.0) > 1e-9, axis=1))
        if bad.size:
            raise TrialsError(
                f"scorer '{scorer}' takes one {side} recording per trial; trial {bad[0] + 1} has "
                f"{totals[bad[0]].max():g} (use maxllr or beta for several)"
            )


def safe_log(values: np.ndarray) -> np.ndarray:
    """Natural log floored at the smallest float64, so no term is -inf."""
    return np.log(np.maximum(values, _TINY))


#: buffers of the reference BA-LR library's `scorer.pt` state dicts -> balr scorer arrays
REFERENCE_BUFFERS = {
    "beta": {"alpha": "alpha_"},
    "maxllr": {"f": "f_", "p": "p_", "q": "q_"},
    "typicality": {"typicality": "typicality_", "dropout": "dropout_"},
}


def reference_checkpoint(content: dict, path: Path) -> tuple[str, dict, dict[str, np.ndarray]]:
    """`(scorer name, params, arrays)` of the reference library's `scorer.pt`, a plain state
    dict of float tensors whose buffer names say the scorer (`alpha`: beta; `f, p, q`:
    maxllr; `typicality, dropout, llrs`: dna or speech, told apart by which formula with the
    default drop-in (0.12) and threshold (1e-4) reproduces the saved `llrs` tables)."""
    arrays = {k: np.asarray(v.numpy(), dtype=np.float64) for k, v in content.items()}
    for name, buffers in REFERENCE_BUFFERS.items():
        if set(buffers) <= set(arrays):
            state = {balr: arrays[ref] for ref, balr in buffers.items()}
            if name != "typicality":
                return name, {}, state
            return _typicality_kind(arrays, state, path), {}, state
    raise ModelError(
        f"{path}: neither a balr scorer checkpoint nor a reference BA-LR scorer.pt "
        f"(buffers: {', '.join(sorted(arrays)) or 'none'})"
    )


def _typicality_kind(arrays: dict, state: dict, path: Path) -> str:
    """`dna` or `speech`: the formula whose table equals the reference's `llrs`, stored as
    `llrs[x, i, y] = log LR_i(enrollment bit 1 - x, test bit 1 - y)`."""
    if "llrs" not in arrays:
        raise ModelError(f"{path}: a reference typicality scorer.pt without its 'llrs' tables")
    saved = np.flip(arrays["llrs"], axis=(0, 2)).transpose(1, 0, 2)  # (attribute, e, t)
    for cls in _with_subclasses(LRScorer):
        if cls.name in ("dna", "speech"):
            scorer = cls.from_state({}, state)
            if np.allclose(scorer.bit_table(), saved, rtol=1e-4, atol=1e-4):
                return cls.name
    raise ModelError(
        f"{path}: its 'llrs' tables match neither the dna nor the speech formula with drop-in "
        "0.12 and typicality threshold 1e-4; refit it with `balr score train`"
    )


def read_checkpoint(path: str | os.PathLike) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """`(scorer name, hyper-parameters, learned arrays)` from a checkpoint; no code executed."""
    path = resolve_reference_path(path, "scorer")  # the reference's scorer.pt
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ModelError(f"{path}: scorer checkpoint not found")
    try:
        if path.suffix == ".pt":
            import torch  # only for the reference's .pt format

            content = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(content, dict) and "scorer" not in content:
                return reference_checkpoint(content, path)
            header = content
            state = records.require(content, "state", path)
            if not isinstance(state, Mapping) or not all(
                isinstance(v, torch.Tensor) for v in state.values()
            ):
                raise records.fail(path, "state", "must be a mapping of tensors")
            state = {k: v.numpy() for k, v in state.items()}
        else:
            with safe_open(str(path), framework="numpy") as handle:
                header = handle.metadata() or {}
            state = load_file(str(path))
    except ModelError:
        raise
    except Exception as exc:  # torch and safetensors raise many types for a bad file
        reason = load_failure_reason(exc)
        raise ModelError(f"{path}: not a balr scorer checkpoint ({reason})") from None
    return records.read_str(header, "scorer", path), _header_params(header, path), state


def _header_params(header: Mapping, path: Path) -> Any:
    """The `params` of a checkpoint's header: a JSON object in safetensors metadata, a dict
    in a `.pt` checkpoint (checked by `Scorer.checked_params`)."""
    params = records.require(header, "params", path)
    if not isinstance(params, str):
        return params
    try:
        return json.loads(params)
    except json.JSONDecodeError as exc:
        raise records.fail(path, "params", f"is not JSON ({exc.msg})") from None
