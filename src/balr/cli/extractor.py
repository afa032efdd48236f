"""`balr extractor ...`: features, training, embeddings and attention plots (DoubleMHA)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import typer
from omegaconf import OmegaConf

from balr.config import compose_config, register_config, save_config
from balr.errors import DataError
from balr.fileio import atomic_write_text, next_run_dir

log = logging.getLogger(__name__)
CONFIG_NAME = "extractor_train"
LIST_SUFFIXES = (".lst", ".list", ".txt", ".ndx")

extractor_app = typer.Typer(
    name="extractor",
    no_args_is_help=True,
    help="DoubleMHA speaker-embedding extractor: features, train, embed, attention.",
)


def seed_style_overrides(args: list[str]) -> list[str]:
    """Turn seed-style `--key value`, `--key=value` and `--flag` into Hydra `key=value`."""
    result, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            result.append(arg)
        elif "=" in arg:
            result.append(arg[2:])
        elif i + 1 < len(args) and not args[i + 1].startswith("--") and "=" not in args[i + 1]:
            result.append(f"{arg[2:]}={args[i + 1]}")
            i += 1
        else:
            result.append(f"{arg[2:]}=true")
        i += 1
    return result


def _feature_items(source: Path, data_dir: Path | None, out_dir: Path | None):
    from balr.extractor.data import audio_item, read_file_list, seed_item

    if source.is_file() and source.suffix in LIST_SUFFIXES:
        base = data_dir or Path(".")
        items = [seed_item(base, rel) for rel in read_file_list(source)]
        if out_dir is not None:
            for item in items:
                item.features_path = out_dir / item.features_path.relative_to(base)
        return items
    from balr.data import AudioDataset

    ds = AudioDataset.from_path(source)
    root = source.parent if source.is_file() else source
    return [
        audio_item(it.id, Path(it.audio), -1, out_dir, root)
        for it in ds.items
        if it.audio is not None
    ]


@extractor_app.command("features")
def features(
    source: Path = typer.Argument(..., help="A files.lst (paths without extension) or a dataset."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Prefix of files.lst paths."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Default: beside the audio."),
    force: bool = typer.Option(False, "--force", help="Recompute existing .npy files."),
) -> None:
    """Precompute raw log-mel features (.npy, float32 (T, 80)) for a file list or a dataset."""
    from balr.extractor.data import precompute_features

    items = _feature_items(source, data_dir, out_dir)
    if not items:
        raise DataError(f"{source}: no audio items")
    counts = precompute_features(items, force)
    typer.echo(
        f"features: {counts['written']} written, {counts['existing']} existing, "
        f"{counts['failed']} failed"
    )


@extractor_app.command(
    "train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def train(
    overrides: list[str] | None = typer.Argument(
        None, help="key=value overrides (seed style --key value also accepted)"
    ),
) -> None:
    """Train the extractor (seed lists or dataset CSVs); best/last checkpoints in out_dir."""
    from balr import distributed
    from balr.extractor.trainer import ExtractorTrainConfig, Trainer, prepare_data

    register_config(CONFIG_NAME, ExtractorTrainConfig)
    composed = compose_config(CONFIG_NAME, seed_style_overrides(list(overrides or [])))
    cfg: ExtractorTrainConfig = OmegaConf.to_object(composed)
    device = distributed.resolve_device(cfg.device)
    distributed.init_distributed(device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else _shared_run_dir()
    cfg.out_dir = str(out_dir)
    data = prepare_data(cfg)
    if distributed.is_main_process():
        save_config(asdict(cfg), out_dir / "config.yaml")
        typer.echo(
            f"training on {len(data.train)} recordings of {data.num_speakers} speakers; "
            f"validating on {len(data.pair_labels)} pairs ({int(data.pair_labels.sum())} "
            f"same-speaker) of {len(data.valid)} recordings; output {out_dir}"
        )
    summary = Trainer(cfg, data, out_dir).fit()
    if distributed.is_main_process():
        atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))


def _shared_run_dir() -> Path:
    """`runs/extractorN`, chosen by rank 0 and shared with every torchrun process."""
    from balr import distributed

    number = torch.tensor([int(next_run_dir("runs", "extractor").name[len("extractor") :])])
    if distributed.world_size() > 1 and torch.distributed.is_initialized():
        torch.distributed.broadcast(number, src=0)
    return Path("runs") / f"extractor{int(number.item())}"


@extractor_app.command("embed")
def embed(
    audio: Path = typer.Option(..., "--audio", help="Audio file (any format, any rate)."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint file or training dir."),
) -> None:
    """Print the speaker embedding of an audio file (one line of numbers)."""
    from balr.extractor import embed_file, load_extractor

    model, _ = load_extractor(checkpoint)
    vector = embed_file(model, audio)
    typer.echo(" ".join(np.format_float_positional(v, precision=6) for v in vector))


@extractor_app.command("attention")
def attention(
    audio: Path = typer.Argument(..., help="Audio file."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint file or training dir."),
    out: Path = typer.Option(Path("attention.png"), "--out", help="PNG to write."),
) -> None:
    """Plot per-head attention over time and the head weights on the spectrogram."""
    from balr.extractor import file_alignment, load_extractor
    from balr.extractor.plots import plot_attention

    model, _ = load_extractor(checkpoint)
    feats, time_weights, head_weights = file_alignment(model, audio)
    plot_attention(feats, time_weights, head_weights, out, title=f"{audio.name}: attention")
    top = np.argsort(-head_weights)[:3]
    typer.echo(
        f"wrote {out}; heaviest heads: " + ", ".join(f"{h} ({head_weights[h]:.2f})" for h in top)
    )


def register(app: typer.Typer) -> None:
    """Add the `extractor` sub-command group."""
    app.add_typer(extractor_app, name="extractor")
