"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.config import config_file_overrides


def old_save_dir_name(name: str) -> typer.Option:
    """A hidden option under an earlier name of `--save-dir` (still accepted)."""
    return typer.Option(None, name, hidden=True, help=f"Old name of --save-dir ({name}).")


def save_dir_or_old_name(save_dir: Path | None, old: Path | None) -> Path | None:
    """`--save-dir`, else the value given under its old name."""
    return save_dir if save_dir is not None else old


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
    from_file = config_file_overrides(config_path, config_name) if config_path else []
    return [*from_file, *(overrides or [])]
