"""Fuzz: every shipped model file, and reference-format ones, damaged (truncated, bit-flipped,
tensors with NaN or of another shape, tensors or JSON fields deleted, renamed, NaN or of the
wrong type) is refused in one line naming the file, never with a traceback.

Each case runs the file's loader (`test_loader`, all cases: milliseconds each); a
representative subset also runs the CLI command that loads the file, in-process
(`test_cli`: exit status 1 and exactly one line on stderr). A "lenient" case (a random bit
flip, an informational field removed) may also load: it must then load without error, and
otherwise fail in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from balr import defaults
from balr.binary_attributes.model import BinaryAttributeEncoder
from balr.cli.main import main
from balr.compare import load_reference_llrs
from balr.doublemha.config import ModelSettings
from balr.doublemha.model import SpeakerClassifier
from balr.embeddings.ge2e import GE2EConfig, build
from balr.errors import BalrError
from balr.scoring import Scorer
from balr.scoring.selection import CalibrationChoice
from tests.conftest import EXAMPLES, REFERENCE_BALR_MIRROR
from tests.model_file_damage import (
    Damage,
    byte_damage,
    json_damage,
    metadata_damage,
    tensor_damage,
)

AUDIO = [str(EXAMPLES / "audio" / "id00906" / "00014.flac")]
COMPARE = ["compare", AUDIO[0], "--test", str(EXAMPLES / "audio" / "id00906" / "00028.flac")]
#: JSON damages also run through the CLI
CLI_JSON_DAMAGES = ("json-calibrator-deleted", "json-calibrator.slope-nan")
#: JSON fields that only describe or may be absent (a calibration without its conditions
#: description is one; a conditions record without per-corpus thresholds is one of the
#: pooled threshold, which `similarity_threshold` holds either way): their removal is allowed
OPTIONAL = {
    "description",
    "groups",
    "provenance",
    "source",
    "notes",
    "conditions",
    "group_thresholds",
}


# ---------------------------------------------------------------- the files under test
@dataclass(frozen=True)
class Target:
    """A model file, how to make the intact one, load it and run the CLI command on it."""

    name: str
    file_name: str  # the damaged copy's name (a calibration finds its sidecar by name)
    make: Callable[[Path], Path]  # writes/copies the intact file into a folder
    load: Callable[[Path], Any]
    cli: Callable[[Path], list[str]]
    companions: tuple[Path, ...] = ()  # intact files copied beside the damaged one
    tensors_key: str | None = None  # where a torch checkpoint keeps its tensors
    marks: tuple = ()


def shipped(path: Path) -> Callable[[Path], Path]:
    return lambda folder: path


def reference_bae(folder: Path) -> Path:
    """The reference library's own `BAE_mse.pt` (a plain state dict), from its mirror."""
    if not REFERENCE_BALR_MIRROR.is_dir():
        pytest.skip("the reference balr mirror is absent (BAE_mse.pt)")
    path = folder / "BAE_mse.pt"
    if not path.is_file():
        blob = "HEAD:resources/models/BAE/BAE_mse.pt"
        data = subprocess.run(
            ["git", "-C", str(REFERENCE_BALR_MIRROR), "show", blob], capture_output=True
        ).stdout
        path.write_bytes(data)
    return path


def reference_beta(folder: Path) -> Path:
    """A reference-format `scorer.pt` (buffer `alpha`) holding the shipped beta scorer."""
    path = folder / "scorer.pt"
    if path.is_file():
        return path
    alpha = Scorer.load(defaults.SCORER_CHECKPOINT).alpha_
    torch.save({"alpha": torch.from_numpy(alpha)}, path)
    return path


def doublemha_checkpoint(folder: Path) -> Path:
    """A small balr DoubleMHA checkpoint (random weights)."""
    path = folder / "best.pt"
    if path.is_file():
        return path
    torch.manual_seed(0)
    settings = ModelSettings(kernel_size=16, embedding_size=8, heads_number=4, num_spkrs=3)
    SpeakerClassifier(settings).save(path)
    return path


def compare_with(*options: str) -> Callable[[Path], list[str]]:
    return lambda path: [*COMPARE, *(o.format(path=path) for o in options)]


def ge2e_load(path: Path) -> Any:
    return build(GE2EConfig(weights=str(path)))


CONDITIONS = defaults.CALIBRATION.with_name("calibration.conditions.safetensors")
COSINE_CONDITIONS = defaults.COSINE_CALIBRATION.with_name(
    "calibration_cosine.conditions.safetensors"
)


def calibration_targets(suffix: str, calibration: Path, conditions: Path) -> tuple[Target, ...]:
    """A shipped calibration file and its conditions description (`calibration<suffix>`,
    `conditions<suffix>`), each damaged while the other stays sound."""
    return (
        Target(
            f"calibration{suffix}",
            calibration.name,
            shipped(calibration),
            CalibrationChoice.from_file,
            compare_with("--calibration", "{path}"),
            companions=(conditions,),
        ),
        Target(
            f"conditions{suffix}",
            conditions.name,
            shipped(conditions),
            lambda path: CalibrationChoice.from_file(path.with_name(calibration.name)),
            lambda path: [*COMPARE, "--calibration", str(path.with_name(calibration.name))],
            companions=(calibration,),
        ),
    )


TARGETS = [
    Target(
        "scorer",
        "scorer.safetensors",
        shipped(defaults.SCORER_CHECKPOINT),
        Scorer.load,
        compare_with("--no-calibration", "scorer.checkpoint_path={path}"),
    ),
    Target(
        "typicality",
        "typicality.safetensors",
        shipped(defaults.TYPICALITY_CHECKPOINT),
        Scorer.load,
        compare_with("--no-calibration", "scorer.checkpoint_path={path}"),
    ),
    Target(
        "bae",
        "bae.safetensors",
        shipped(defaults.BAE_CHECKPOINT),
        BinaryAttributeEncoder.load,
        compare_with("--no-calibration", "encoder.model.checkpoint_path={path}"),
    ),
    Target(
        "ge2e",
        "ge2e.safetensors",
        shipped(defaults.GE2E_WEIGHTS),
        ge2e_load,
        compare_with("--no-calibration", "embeddings.model.weights={path}"),
    ),
    *calibration_targets("", defaults.CALIBRATION, CONDITIONS),
    *calibration_targets("_cosine", defaults.COSINE_CALIBRATION, COSINE_CONDITIONS),
    Target(
        "reference_llrs",
        "reference_llrs.npz",
        shipped(defaults.REFERENCE_LLRS),
        load_reference_llrs,
        lambda path: [
            *COMPARE,
            "--report",
            str(path.with_name("r.html")),
            "--reference",
            str(path),
        ],
    ),
    Target(
        "reference_bae",
        "BAE_mse.pt",
        reference_bae,
        BinaryAttributeEncoder.load,
        compare_with("--no-calibration", "encoder.model.checkpoint_path={path}"),
    ),
    Target(
        "reference_scorer",
        "scorer.pt",
        reference_beta,
        Scorer.load,
        compare_with("--no-calibration", "scorer.checkpoint_path={path}"),
    ),
    Target(
        "doublemha",
        "best.pt",
        doublemha_checkpoint,
        SpeakerClassifier.load,
        lambda path: ["extractor", "embed", "--audio", AUDIO[0], "--checkpoint", str(path)],
        tensors_key="model",
    ),
]


# ---------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    target: Target
    damage: str
    write: Damage
    strict: bool = True  # must be refused (lenient: refused in one line, or loaded)
    cli: bool = False  # also run through the CLI
    marks: tuple = ()


def copy_intact(intact: Path, out: Path, tensors_key: str | None) -> None:
    shutil.copy(intact, out)


def byte_cases(target: Target) -> list[Case]:
    kinds = ["truncated-half", "truncated-12", "empty", "magic-flip"]
    cases = [Case(target, kind, byte_damage(kind), cli=kind == "truncated-half") for kind in kinds]
    return cases + [
        Case(target, f"random-flips-{seed}", byte_damage("random", seed), strict=False)
        for seed in range(2)
    ]


def tensor_cases(target: Target) -> list[Case]:
    """One float tensor NaN, inf, narrower, deleted, renamed. The width of the conditions'
    reference vectors is only known against the scorer's vectors: `compare` refuses it
    there, in one line; its loader may accept it."""
    return [
        Case(
            target,
            f"tensor-{kind}",
            tensor_damage(kind),
            strict=not (kind == "shape" and target.name.startswith("conditions")),
            cli=kind == "nan",
        )
        for kind in ("nan", "inf", "shape", "deleted", "renamed")
    ]


#: safetensors metadata that the loader needs (others only describe the file)
REQUIRED_METADATA = {
    "scorer": {"scorer", "params"},
    "typicality": {"scorer", "params"},
    "bae": {"embedding_dim"},
}


def metadata_cases(target: Target, metadata: dict[str, str]) -> list[Case]:
    cases = []
    for key, text in metadata.items():
        strict = key in REQUIRED_METADATA.get(target.name, ())
        for kind in ("deleted", "renamed", "abc", "nan", "-1"):
            cases.append(
                Case(target, f"metadata-{key}-{kind}", metadata_damage(key, kind), strict=strict)
            )
        if key == "params":
            for name in json.loads(text):
                for kind in ("nan", "abc", "null", "deleted"):
                    cases.append(
                        Case(
                            target,
                            f"params-{name}-{kind}",
                            metadata_damage(key, kind, name),
                            strict=kind != "deleted",
                        )
                    )
    return cases


def json_cases(target: Target, record: dict, where: tuple = ()) -> list[Case]:
    """Every field of a JSON record: deleted, renamed, NaN, of the wrong type; the CLI runs
    a whole section deleted and a number made NaN (`CLI_JSON_DAMAGES`)."""
    cases = []
    for key, value in record.items():
        path = (*where, key)
        label = ".".join(map(str, path))
        if isinstance(value, list) and value and isinstance(first_scalar(value)[1], float):
            index, _ = first_scalar(value)
            item = "".join(f"[{i}]" for i in index)
            damage = json_damage((*path, *index), "nan")
            cases.append(Case(target, f"json-{label}{item}-nan", damage))
        kinds = json_kinds(key, value)
        if where[-1:] == ("group_thresholds",):  # one corpus's threshold: it explains the
            kinds |= {"deleted": False, "renamed": False}  # lowest, similarity_threshold
        for kind, strict in kinds.items():
            name = f"json-{label}-{kind}"
            cli = name in CLI_JSON_DAMAGES
            cases.append(Case(target, name, json_damage(path, kind), strict=strict, cli=cli))
        if isinstance(value, dict):
            cases += json_cases(target, value, path)
    return cases


def json_kinds(key: str, value: Any) -> dict[str, bool]:
    """Damages of one JSON field and whether each must be refused."""
    needed = key not in OPTIONAL
    if isinstance(value, dict):
        return {"deleted": needed, "renamed": needed, "abc": True}
    if isinstance(value, bool):
        return {"number": True, "deleted": True}
    if isinstance(value, int | float):
        return dict.fromkeys(("nan", "abc", "null", "deleted", "renamed"), True)
    if isinstance(value, str):
        return dict.fromkeys(("number", "null", "deleted"), needed)
    return {"abc": needed, "number": needed, "deleted": needed and bool(value)}


def first_scalar(values: list) -> tuple[tuple[int, ...], Any]:
    """The index path of the first scalar of a (nested) list, and the scalar."""
    index: tuple[int, ...] = ()
    while isinstance(values, list) and values:
        index, values = (*index, 0), values[0]
    return index, values


def cases_of(target: Target) -> list[Case]:
    cases = byte_cases(target)
    if target.file_name.endswith(".json"):
        return cases + json_cases(target, json.loads(target.make(Path()).read_text()))
    cases += tensor_cases(target)
    if target.file_name.endswith(".safetensors"):
        with safe_open(str(target.make(Path())), "numpy") as handle:
            cases += metadata_cases(target, handle.metadata() or {})
    return cases


CASES = [case for target in TARGETS for case in cases_of(target)]


def params(cases: list[Case]) -> list:
    return [
        pytest.param(c, id=f"{c.target.name}-{c.damage}", marks=(*c.target.marks, *c.marks))
        for c in cases
    ]


# ---------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def intact_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("intact")


def damaged(case: Case, intact_dir: Path, folder: Path) -> Path:
    """The damaged copy of the case's file in `folder`, its companions copied beside it."""
    for companion in case.target.companions:
        shutil.copy(companion, folder / companion.name)
    out = folder / case.target.file_name
    case.write(case.target.make(intact_dir), out, case.target.tensors_key)
    return out


@pytest.mark.parametrize("target", [pytest.param(t, id=t.name) for t in TARGETS])
def test_intact_file_loads(target, intact_dir, tmp_path):
    """Each loader accepts the intact file: a refused damage is the damage, not the setup."""
    path = damaged(Case(target, "none", copy_intact), intact_dir, tmp_path)
    assert target.load(path) is not None


@pytest.mark.parametrize("case", params(CASES))
def test_loader(case, intact_dir, tmp_path):
    path = damaged(case, intact_dir, tmp_path)
    try:
        case.target.load(path)
    except BalrError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert str(tmp_path) in message, message
    else:
        assert not case.strict, f"{path}: the damaged file ({case.damage}) was loaded"


@pytest.mark.parametrize("case", params([c for c in CASES if c.cli]))
def test_cli(case, intact_dir, tmp_path, capsys):
    """The command that loads the file exits with status 1 and one line of error."""
    path = damaged(case, intact_dir, tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        main(case.target.cli(path))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_status.value.code == 1, errors
    assert len(errors) == 1, errors
    assert errors[0].startswith("error: ") and str(tmp_path) in errors[0], errors
