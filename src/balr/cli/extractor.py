"""`balr extractor ...`: features, training, embeddings and attention plots (DoubleMHA).

The commands parse their arguments and call `balr.doublemha`; `train` opens the torchrun
process group (`balr.distributed.session`) and picks the shared run folder.
"""

from __future__ import annotations

from pathlib import Path

import typer

from balr import distributed
from balr.cli.options import old_save_dir_name, save_dir_or_old_name

RUNS = ("runs", "extractor")  # default output folder: runs/extractorN
DASHED_NAMES = {"save-dir": "out_dir"}  # `--save-dir DIR`, as in every other command

extractor_app = typer.Typer(
    name="extractor",
    no_args_is_help=True,
    help="DoubleMHA speaker-embedding extractor: features, train, embed, attention.",
)


def dashed_overrides(args: list[str]) -> list[str]:
    """Turn the reference implementation's `--key value`, `--key=value` and `--flag`
    arguments into Hydra `key=value` overrides (Hydra overrides pass through);
    `--save-dir DIR` is `out_dir=DIR`."""
    result, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            result.append(arg)
        elif "=" in arg:
            key, value = arg[2:].split("=", 1)
            result.append(f"{DASHED_NAMES.get(key, key)}={value}")
        elif i + 1 < len(args) and not args[i + 1].startswith("--") and "=" not in args[i + 1]:
            result.append(f"{DASHED_NAMES.get(arg[2:], arg[2:])}={args[i + 1]}")
            i += 1
        else:
            result.append(f"{arg[2:]}=true")
        i += 1
    return result


@extractor_app.command("features")
def features(
    source: Path | None = typer.Argument(
        None, help="A files.lst (audio paths, extension optional) or a dataset."
    ),
    files_list: Path | None = typer.Option(
        None, "-i", "--audioFilesList", help="The files.lst, as the reference's -i."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Prefix of files.lst paths."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Default: beside the audio."),
    force: bool = typer.Option(False, "--force", help="Recompute existing .npy files."),
    out_dir: Path | None = old_save_dir_name("--out-dir"),
) -> None:
    """Precompute raw log-mel features (.npy, float32 (T, 80)) for a file list or a dataset."""
    from balr.doublemha.data import write_features

    if (source is None) == (files_list is None):
        raise typer.BadParameter("give the file list or dataset once: SOURCE or -i FILES_LIST")
    source = source or files_list
    counts = write_features(source, data_dir, save_dir_or_old_name(save_dir, out_dir), force)
    typer.echo(
        f"features: {counts['written']} written, {counts['existing']} existing, "
        f"{counts['failed']} failed"
    )


@extractor_app.command(
    "train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def train(
    overrides: list[str] | None = typer.Argument(
        None, help="key=value overrides (--key value also accepted; --save-dir is out_dir)"
    ),
) -> None:
    """Train the extractor (reference-format lists or dataset CSVs); checkpoints in out_dir."""
    from balr.doublemha.config import train_config
    from balr.doublemha.trainer import train_extractor

    cfg = train_config(dashed_overrides(list(overrides or [])))
    device = distributed.resolve_device(cfg.device)
    with distributed.session(device):
        out_dir = Path(cfg.out_dir) if cfg.out_dir else distributed.shared_run_dir(*RUNS)
        train_extractor(cfg, out_dir, device)


@extractor_app.command("embed")
def embed(
    audio: Path = typer.Option(
        ..., "--audio", "--audioPath", help="Audio file (any format, any rate)."
    ),
    checkpoint: Path = typer.Option(
        ...,
        "--checkpoint",
        "--modelCheckpoint",
        help="Checkpoint file or training dir; also the reference's .chkpt.",
    ),
    model_config: Path | None = typer.Option(
        None,
        "--modelConfig",
        help="The reference's _config.pkl: checked against the checkpoint, whose settings win.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu (default, as the reference), cuda."),
) -> None:
    """Print the speaker embedding of an audio file (one line of numbers)."""
    import numpy as np

    from balr.distributed import resolve_device
    from balr.doublemha import SpeakerClassifier, embed_file
    from balr.doublemha.reference import config_mismatches, read_reference_config

    model = SpeakerClassifier.load(checkpoint, resolve_device(device))
    if model_config is not None:
        differing = config_mismatches(read_reference_config(model_config), model.settings)
        if differing:
            typer.echo(
                f"warning: {model_config} differs from the checkpoint in {', '.join(differing)}; "
                "the checkpoint's settings are used, as the reference does",
                err=True,
            )
    vector = embed_file(model, audio)
    typer.echo(" ".join(np.format_float_positional(v, precision=6) for v in vector))


@extractor_app.command("attention")
def attention(
    audio: Path = typer.Argument(..., help="Audio file."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint file or training dir."),
    out: Path = typer.Option(Path("attention.png"), "--out", help="PNG to write."),
) -> None:
    """Plot per-head attention over time and the head weights on the spectrogram."""
    import numpy as np

    from balr.doublemha import SpeakerClassifier
    from balr.doublemha.plots import plot_file_attention

    head_weights = plot_file_attention(SpeakerClassifier.load(checkpoint), audio, out)
    top = np.argsort(-head_weights)[:3]
    typer.echo(
        f"wrote {out}; heaviest heads: " + ", ".join(f"{h} ({head_weights[h]:.2f})" for h in top)
    )


def register(app: typer.Typer) -> None:
    """Add the `extractor` sub-command group."""
    app.add_typer(extractor_app, name="extractor")
