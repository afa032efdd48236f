"""`balr vectors`: convert a dataset's vectors between sidecar files, a store and Kaldi."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from balr.cli.options import old_save_dir_name, save_dir_or_old_name

logger = logging.getLogger(__name__)
VECTORS_DIR_HELP = "Where the vectors are: the folder extract / binarize wrote them to."


def deprecated_save_dir() -> typer.Option:
    """`--save-dir`, the earlier name of these commands' `--vectors-dir` (still accepted)."""
    return typer.Option(None, "--save-dir", hidden=True, help="Old name of --vectors-dir.")


def vectors_folder(vectors_dir: Path | None, save_dir: Path | None, old: Path | None):
    """`--vectors-dir`, else `--save-dir` (deprecated: said so), else `--output-dir`."""
    if vectors_dir is None and save_dir is not None:
        logger.warning("--save-dir is deprecated here: it is --vectors-dir, as on every reader")
    return vectors_dir if vectors_dir is not None else save_dir_or_old_name(save_dir, old)


vectors_app = typer.Typer(
    help="Convert vectors: sidecar files <-> single-file store, Kaldi ark/scp.",
    no_args_is_help=True,
)


@vectors_app.command("pack")
def pack(
    dataset: Path = typer.Argument(..., help="Dataset (directory, CSV, Kaldi dir)."),
    kind: str = typer.Option("emb", help="emb or ba."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    save_dir: Path | None = deprecated_save_dir(),
    output_dir: Path | None = old_save_dir_name("--output-dir"),
) -> None:
    """Gather every vector of a dataset into one memory-mapped store (fast to load), in the
    vectors' folder."""
    from balr.data.convert import pack_vectors

    folder = vectors_folder(vectors_dir, save_dir, output_dir)
    count, base = pack_vectors(dataset, kind, folder)
    typer.echo(f"wrote {count} vectors to {base}.npy (+ {base.name}.ids.txt)")


@vectors_app.command("export-kaldi")
def export_kaldi(
    dataset: Path = typer.Argument(..., help="Dataset (directory, CSV, Kaldi dir)."),
    ark: Path = typer.Argument(..., help="Output .ark (a .scp index is written beside it)."),
    kind: str = typer.Option("emb", help="emb or ba."),
    vectors_dir: Path | None = typer.Option(None, "--vectors-dir", help=VECTORS_DIR_HELP),
    save_dir: Path | None = deprecated_save_dir(),
    output_dir: Path | None = old_save_dir_name("--output-dir"),
) -> None:
    """Write a dataset's vectors as a Kaldi archive + scp (e.g. for Kaldi PLDA back-ends)."""
    from balr.data.convert import export_kaldi_vectors

    folder = vectors_folder(vectors_dir, save_dir, output_dir)
    count, scp = export_kaldi_vectors(dataset, ark, kind, folder)
    typer.echo(f"wrote {count} vectors to {ark} and {scp}")


def register(app: typer.Typer) -> None:
    app.add_typer(vectors_app, name="vectors")
