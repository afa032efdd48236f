"""`balr vectors`: convert a dataset's vectors between sidecar files, a store and Kaldi."""

from __future__ import annotations

from pathlib import Path

import typer

from balr.cli.options import old_save_dir_name, save_dir_or_old_name

vectors_app = typer.Typer(
    help="Convert vectors: sidecar files <-> single-file store, Kaldi ark/scp.",
    no_args_is_help=True,
)


@vectors_app.command("pack")
def pack(
    dataset: Path = typer.Argument(..., help="Dataset (directory, CSV, Kaldi dir)."),
    kind: str = typer.Option("emb", help="emb or ba."),
    save_dir: Path | None = typer.Option(
        None, "--save-dir", help="Where the vectors are (and go) (default: dataset folder)."
    ),
    output_dir: Path | None = old_save_dir_name("--output-dir"),
) -> None:
    """Gather every vector of a dataset into one memory-mapped store (fast to load)."""
    from balr.data.convert import pack_vectors

    count, base = pack_vectors(dataset, kind, save_dir_or_old_name(save_dir, output_dir))
    typer.echo(f"wrote {count} vectors to {base}.npy (+ {base.name}.ids.txt)")


@vectors_app.command("export-kaldi")
def export_kaldi(
    dataset: Path = typer.Argument(..., help="Dataset (directory, CSV, Kaldi dir)."),
    ark: Path = typer.Argument(..., help="Output .ark (a .scp index is written beside it)."),
    kind: str = typer.Option("emb", help="emb or ba."),
    save_dir: Path | None = typer.Option(
        None, "--save-dir", help="Where the vectors are (extract/binarize --save-dir)."
    ),
    output_dir: Path | None = old_save_dir_name("--output-dir"),
) -> None:
    """Write a dataset's vectors as a Kaldi archive + scp (e.g. for Kaldi PLDA back-ends)."""
    from balr.data.convert import export_kaldi_vectors

    folder = save_dir_or_old_name(save_dir, output_dir)
    count, scp = export_kaldi_vectors(dataset, ark, kind, folder)
    typer.echo(f"wrote {count} vectors to {ark} and {scp}")


def register(app: typer.Typer) -> None:
    app.add_typer(vectors_app, name="vectors")
