"""The list of command modules; each has `register(app: typer.Typer) -> None`."""

from balr.cli import (
    binarize,
    compare,
    evaluate,
    extract,
    extractor,
    score,
    train,
    vectors,
    verify,
)

MODULES: list = [compare, extract, binarize, train, score, evaluate, extractor, vectors, verify]
