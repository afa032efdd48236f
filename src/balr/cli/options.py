"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import typer


def old_save_dir_name(name: str) -> typer.Option:
    """A hidden option under an earlier name of `--save-dir` (still accepted)."""
    return typer.Option(None, name, hidden=True, help=f"Old name of --save-dir ({name}).")


def save_dir_or_old_name(save_dir: Path | None, old: Path | None) -> Path | None:
    """`--save-dir`, else the value given under its old name."""
    return save_dir if save_dir is not None else old
