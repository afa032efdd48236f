"""The list of command modules; each has `register(app: typer.Typer) -> None`."""

from balr.cli import vectors

MODULES: list = [vectors]
