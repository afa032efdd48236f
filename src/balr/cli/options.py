"""Options shared by several commands."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from balr.errors import ConfigError

if TYPE_CHECKING:
    from balr.data.dataset import DatasetReading

logger = logging.getLogger(__name__)


def old_save_dir_name(name: str) -> typer.Option:
    """A hidden option under an earlier name of `--save-dir` (still accepted)."""
    return typer.Option(None, name, hidden=True, help=f"Old name of --save-dir ({name}).")


def save_dir_or_old_name(save_dir: Path | None, old: Path | None) -> Path | None:
    """`--save-dir`, else the value given under its old name."""
    return save_dir if save_dir is not None else old


def force_option(what: str) -> typer.Option:
    """`--force / --no-force` (default: no force, as the reference)."""
    return typer.Option(False, "--force/--no-force", help=f"Recompute existing {what}.")


def save_output_option() -> typer.Option:
    """`--save-output / --no-save-output`: without saving, vectors are computed and counted."""
    return typer.Option(
        None,
        "--save-output/--no-save-output",
        help="Write the vectors (default); --no-save-output computes them and writes nothing.",
        show_default=False,
    )


def exist_ok_option() -> typer.Option:
    """`--exist-ok / --no-exist-ok`: the reference's run-folder rule (`balr.fileio.run_dir`)."""
    return typer.Option(
        None,
        "--exist-ok/--no-exist-ok",
        help="Write into --save-dir even if it exists (default: a new DIR2, DIR3, ...).",
        show_default=False,
    )


def audio_formats_option() -> typer.Option:
    """`--audio-formats`: extensions scanned in an INPUT directory (repeatable or a comma list)."""
    return typer.Option(
        None, "--audio-formats", help="Extensions to scan, e.g. wav,flac (repeatable)."
    )


def root_dir_option() -> typer.Option:
    """`--root-dir DIR`: where a CSV's relative paths start (default: the CSV's folder)."""
    return typer.Option(
        None, "--root-dir", help="Prefix of the relative paths of a CSV (default: its folder)."
    )


def device_option() -> typer.Option:
    """`--device`: the reference's default `cpu`."""
    return typer.Option(
        None, "--device", help="cpu (default), cuda, cuda:N or cuda:0,1 (torchrun)."
    )


def config_path_option() -> typer.Option:
    """`--config-path DIR`: the reference's user Hydra config folder (read as data)."""
    return typer.Option(
        None, "--config-path", help="Folder of a YAML config (with --config-name), read as data."
    )


def config_name_option() -> typer.Option:
    """`--config-name NAME`: the YAML config of `--config-path` (`NAME.yaml`)."""
    return typer.Option("config", "--config-name", help="YAML config name in --config-path.")


def with_config_file(
    config_path: Path | None, config_name: str, overrides: list[str] | None
) -> list[str]:
    """The YAML config's `key=value` overrides (if `--config-path`), then the command
    line's, which win."""
    from balr.config import config_file_overrides  # hydra: imported when a command runs

    from_file = config_file_overrides(config_path, config_name) if config_path else []
    return [*from_file, *(overrides or [])]


# The reference's top-level run keys (its `RunConfig`), accepted as overrides or in a
# --config-path YAML; the command line's options win over them.
RUN_KEYS = ("input", "save_output", "save_dir", "exist_ok", "audio_formats", "device")
IGNORED_RUN_KEYS = ("model_dir",)  # in the reference's RunConfig, read by none of its code
DEFAULT_DEVICE = "cpu"  # the reference's documented default of every --device


@dataclass(frozen=True)
class RunOptions:
    """What a command runs with: its options, else the run keys of the overrides, else the
    reference's defaults; `overrides` are the remaining (stage) overrides."""

    overrides: list[str]
    save_output: bool = True
    save_dir: Path | None = None
    exist_ok: bool = False
    audio_formats: list[str] = field(default_factory=list)  # empty: every supported one
    device: str = DEFAULT_DEVICE

    def reading(self, root_dir: Path | None) -> DatasetReading:
        """How the job reads its dataset: these audio formats, a CSV's paths below `root_dir`
        (`--root-dir`)."""
        from balr.data.dataset import DatasetReading  # torch: imported when a command runs

        return DatasetReading(tuple(self.audio_formats), root_dir)


def run_options(
    overrides: list[str],
    *,
    save_output: bool | None = None,
    save_dir: Path | None = None,
    exist_ok: bool | None = None,
    audio_formats: list[str] | None = None,
    device: str | None = None,
) -> RunOptions:
    """Split the run keys (`device=cuda`, `save_dir=out`, `+model_dir=...`) from `overrides`
    and merge them under the options given on the command line (None = not given).
    `input` always yields to the INPUT argument, as in the reference; `model_dir` is
    dropped with a warning (the reference reads it nowhere)."""
    keys, rest = _take_run_keys(overrides)
    formats = audio_formats or keys.get("audio_formats") or []
    if isinstance(formats, str):
        formats = [formats]
    return RunOptions(
        overrides=rest,
        save_output=_first(save_output, keys.get("save_output"), True),
        save_dir=_first(save_dir, _path(keys.get("save_dir")), None),
        exist_ok=_first(exist_ok, keys.get("exist_ok"), False),
        audio_formats=[f.strip() for value in formats for f in str(value).split(",") if f.strip()],
        device=str(_first(device, keys.get("device"), DEFAULT_DEVICE)),
    )


def _take_run_keys(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """(run key -> parsed value, the other overrides)."""
    keys: dict[str, Any] = {}
    rest = []
    for item in overrides:
        name = item.partition("=")[0].lstrip("+")
        if name in IGNORED_RUN_KEYS:
            logger.warning("%s: ignored (the reference library reads it nowhere)", item)
        elif name in RUN_KEYS:
            keys[name] = _override_value(item)
        else:
            rest.append(item)
    return keys, rest


def _override_value(item: str) -> Any:
    """The value of `key=value` in Hydra's override grammar (`[wav, flac]`, `'cuda:0'`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(item.lstrip("+")).value()
    except Exception as exc:  # hydra raises several exception types
        raise ConfigError(f"override '{item}': {exc}") from None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _path(value: Any) -> Path | None:
    return Path(str(value)) if value is not None else None


def population_adapt_option() -> typer.Option:
    """`--population-adapt` of `compare` and `score test` (`balr.population.ADAPT_MODES`)."""
    return typer.Option(
        "auto",
        "--population-adapt",
        help="auto: adapt to the --population only where its different-speaker comparisons "
        "break the bound of calibrated LRs; always: adapt whatever they show.",
    )
