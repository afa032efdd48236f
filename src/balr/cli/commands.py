"""The list of command modules; each has `register(app: typer.Typer) -> None`."""

from balr.cli import binarize, evaluate, extract, extractor, score, train, vectors

MODULES: list = [extract, binarize, train, evaluate, vectors, extractor, score]
