"""`balr vectors`: convert a dataset's vectors between sidecar files, a store and Kaldi."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.data import AudioDataset, write_vector_store
from balr.data.kaldi import write_kaldi_vectors
from balr.data.vectors import VECTOR_KINDS, check_kind
from balr.errors import DataError

vectors_app = typer.Typer(
    help="Convert vectors: sidecar files <-> single-file store, Kaldi ark/scp.",
    no_args_is_help=True,
)


def _load(dataset: Path, kind: str, output_dir: Path | None):
    ds = AudioDataset.from_path(dataset, output_dir=output_dir)
    indices, vectors = ds.stack_vectors(check_kind(kind))
    if len(indices) == 0:
        raise DataError(f"{dataset}: no {VECTOR_KINDS[kind]} vectors found")
    return ds, [ds.items[i].id for i in indices], vectors


@vectors_app.command("pack")
def pack(
    dataset: Path = typer.Argument(..., help="Dataset (directory, CSV, Kaldi dir)."),
    kind: str = typer.Option("emb", help="emb or ba."),
    output_dir: Path | None = typer.Option(None, help="Where the vectors are (and go)."),
) -> None:
    """Gather every vector of a dataset into one memory-mapped store (fast to load)."""
    ds, ids, vectors = _load(dataset, kind, output_dir)
    base = (output_dir or ds.root) / VECTOR_KINDS[kind]
    write_vector_store(base, ids, vectors)
    typer.echo(f"wrote {len(ids)} vectors to {base}.npy (+ {base.name}.ids.txt)")


@vectors_app.command("export-kaldi")
def export_kaldi(
    dataset: Path = typer.Argument(..., help="Dataset (directory, CSV, Kaldi dir)."),
    ark: Path = typer.Argument(..., help="Output .ark (a .scp index is written beside it)."),
    kind: str = typer.Option("emb", help="emb or ba."),
    output_dir: Path | None = typer.Option(None, help="Where the vectors are."),
) -> None:
    """Write a dataset's vectors as a Kaldi archive + scp (e.g. for Kaldi PLDA back-ends)."""
    _, ids, vectors = _load(dataset, kind, output_dir)
    scp = write_kaldi_vectors(ark, ids, vectors)
    typer.echo(f"wrote {len(ids)} vectors to {ark} and {scp}")


def register(app: typer.Typer) -> None:
    app.add_typer(vectors_app, name="vectors")
