"""The list of command modules; each has `register(app: typer.Typer) -> None`."""

from balr.cli import binarize, train, vectors

MODULES: list = [binarize, train, vectors]
