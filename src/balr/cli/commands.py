"""The list of command modules; each has `register(app: typer.Typer) -> None`."""

from balr.cli import binarize, evaluate, train, vectors

MODULES: list = [binarize, train, evaluate, vectors]
