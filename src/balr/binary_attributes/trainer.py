"""Training loop of the binary-attribute encoder: Adam, NxM batches, DDP under torchrun.

    history = BAETrainer(config, out_dir, device).fit(train, valid)

`train` and `valid` are `LabelledEmbeddings` (embeddings and their speakers); validation
speakers should differ from the training ones. Under torchrun the caller opens the process
group first (`with balr.distributed.session(device):`, as `balr train` does); each process
then trains on its share of the batches. Files in `out_dir` (main process only, each
written atomically except TensorBoard's stream): `config.yaml`,
`weights/{last,best}.safetensors` (+ `.json`: model config, epoch, losses; both record the
training embeddings' model, `balr.data.provenance`),
`weights/last_state.pt` (optimiser and loss state, tensors only: loaded with
weights_only=True), `weights/epochN.safetensors` every `save_period` epochs,
`history.json`, and TensorBoard event files; all but epochN are written every
`checkpoint_period` epochs (1 by default) and after the last one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from balr.binary_attributes.config import train_config
from balr.binary_attributes.losses import WeightedLosses, build_losses
from balr.binary_attributes.model import BinaryAttributeEncoder, read_state_dict
from balr.binary_attributes.resume import read_history, read_resume_state, tensor_shapes
from balr.binary_attributes.samplers import NxMSampler, PlainBatchSampler, sampler_class
from balr.config import save_config
from balr.data.dataset import DatasetReading
from balr.data.labelled import LabelledEmbeddings, labelled_embeddings
from balr.data.provenance import EmbeddingProvenance
from balr.distributed import rank, resolve_device, session, shared_save_dir, world_size
from balr.errors import ConfigError, DataError, ModelError
from balr.fileio import atomic_path, atomic_write_text
from balr.records import check_state_dict
from balr.training import Trainer, stop_on_interrupt

logger = logging.getLogger(__name__)


class _TrainStep(nn.Module):
    """Model and losses in one module, so DDP synchronises ArcFace's weights too."""

    def __init__(self, model: BinaryAttributeEncoder, losses: WeightedLosses):
        super().__init__()
        self.model = model
        self.losses = losses

    def forward(self, x: torch.Tensor, y: torch.Tensor, training_classes: bool = True):
        out = self.model(x)
        return self.losses(x, y, out.codes, out.reconstruction, out.z, training_classes)


# the reference library's TensorBoard names: `{mode}/{label}`, the epoch 0-based
REFERENCE_TB_MODES = {"train": "train", "val": "test"}
REFERENCE_TB_LABELS = {
    "total": "total_loss",
    "mse": "MSE",
    "triplet": "Triplet",
    "sparsity": "Sparsity",
    "arcface": "ArcFace",
}
TRAIN_RUN_DIR = "runs/train"  # the reference's default run folder of `balr train`
WEIGHT_INITS = ("kaiming_normal", "pytorch")


def initialise_weights(model: nn.Module, method: str) -> None:
    """`kaiming_normal`: He et al. (ICCV 2015) normal init, fan-in mode, of every Linear
    weight (biases and BatchNorm as torch sets them), as the reference library does;
    `pytorch`: torch's default init, left as is."""
    if method not in WEIGHT_INITS:
        raise ConfigError(f"trainer.weight_init '{method}': expected one of {WEIGHT_INITS}")
    if method == "kaiming_normal":
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_in")


def _class_indices(data: LabelledEmbeddings, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """`(float32 embeddings, speaker index 0..C-1 of each row, C)`, after checking shapes."""
    x, speakers = np.asarray(data.embeddings, np.float32), np.asarray(data.speakers)
    if x.ndim != 2 or len(x) != len(speakers) or len(x) == 0:
        raise DataError(
            f"{what} data: expected embeddings (n, d) and n labels, got {x.shape} and "
            f"{speakers.shape}"
        )
    classes, labels = np.unique(speakers, return_inverse=True)
    return x, labels.astype(np.int64), len(classes)


def trained_on(
    train: LabelledEmbeddings, valid: LabelledEmbeddings | None
) -> EmbeddingProvenance | None:
    """The embedding model to record in the encoder: the training embeddings' (None, with a
    warning, when unknown); validation embeddings of another model or dimension are refused."""
    recorded = train.provenance
    dim = np.shape(train.embeddings)[1]
    if recorded is not None and recorded.dim != dim:
        raise DataError(f"training data: recorded as {recorded} embeddings but they have {dim}")
    if recorded is None:
        logger.warning(
            "the training embeddings have no recorded model (embedding_model.json): the "
            "encoder will not record which embeddings it fits"
        )
    other = valid.provenance if valid is not None else None
    if recorded is not None and other is not None and other != recorded:
        raise DataError(
            f"training embeddings are {recorded} but validation embeddings {other}: "
            "validate on embeddings of the same model"
        )
    return recorded


class BAETrainer(Trainer):
    """Fits a BinaryAttributeEncoder on embeddings and their speaker labels.

    `config` is the `balr train` config (`balr.binary_attributes.config.TrainConfig`).
    """

    def __init__(
        self, config: DictConfig, out_dir: str | Path, device: torch.device | str | None = None
    ):
        super().__init__(config, out_dir, device)
        self.weights_dir = self.out_dir / "weights"
        self.history: list[dict] = []
        self.best_loss = math.inf
        self.start_epoch = 0
        self.global_step = 0

    # ------------------------------------------------------------------ set-up
    def _build(self, input_dim: int, num_classes: int) -> None:
        """Model, losses, optimiser (and DDP wrapper inside a torchrun process group)."""
        cfg = self.config
        if cfg.model.input_dim not in (None, input_dim):
            key = "trainer.input_dim" if cfg.trainer.input_dim is not None else "model.input_dim"
            raise ConfigError(
                f"{key}={cfg.model.input_dim} but the training embeddings have {input_dim} "
                f"dimensions (without {key}, the embeddings' dimension is used)"
            )
        torch.manual_seed(cfg.trainer.seed)
        self.model = BinaryAttributeEncoder(
            input_dim, cfg.model.latent_dim, ste_gradient=cfg.trainer.ste_gradient
        )
        initialise_weights(self.model, cfg.trainer.weight_init)
        specs = OmegaConf.to_container(cfg.trainer.losses, resolve=True)
        self.losses = build_losses(
            specs,
            num_classes,
            cfg.model.latent_dim,
            cfg.data.M_samples_per_class,
            seed=cfg.trainer.seed,
        )
        self.step_module = _TrainStep(self.model, self.losses).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.step_module.parameters(), lr=cfg.trainer.learning_rate
        )
        self.runner = self.wrap(self.step_module, find_unused_parameters="mse" not in specs)
        logger.info(
            "rank %d of %d on %s: %d classes, losses %s",
            rank(),
            world_size(),
            self.device,
            num_classes,
            ", ".join(specs),
        )

    def _sampler(self, name: str | None, labels: np.ndarray, train: bool) -> NxMSampler:
        data = self.config.data
        options = dict(seed=self.config.trainer.seed, shuffle=train and data.shuffle)
        n, m = data.N_classes_per_batch, data.M_samples_per_class
        if name is None:
            if "sparsity" in self.config.trainer.losses:
                raise ConfigError("the sparsity loss needs NxM batches: set data.sampler")
            return PlainBatchSampler(labels, data.batch_size or n * m, drop_last=False, **options)
        if data.batch_size not in (None, n * m):
            raise ConfigError(
                f"data.batch_size={data.batch_size} but an NxM sampler makes batches of "
                f"N x M = {n} x {m} = {n * m}"
            )
        drop_last = train and data.drop_last  # validation keeps every sample
        return sampler_class(name)(labels, n, m, drop_last=drop_last, **options)

    # ------------------------------------------------------------------ public
    def fit(self, train: LabelledEmbeddings, valid: LabelledEmbeddings | None = None) -> list[dict]:
        """Train for `trainer.epochs` epochs; returns the per-epoch history."""
        cfg = self.config
        train_x, train_labels, num_classes = _class_indices(train, "training")
        self._build(train_x.shape[1], num_classes)
        sampler = self._sampler(cfg.data.sampler, train_labels, train=True)
        if len(sampler) == 0:
            raise DataError(
                f"training data: {num_classes} speakers cannot fill one batch of "
                f"N={cfg.data.N_classes_per_batch} speakers per process"
            )
        self.model.trained_on = trained_on(train, valid)
        validation = self._validation_data(valid)
        if cfg.trainer.resume:
            self._resume()
        writer = self._open_outputs()
        x, y = self._on_device(train_x, train_labels)
        try:
            for epoch in range(self.start_epoch, cfg.trainer.epochs):
                started = time.perf_counter()
                train_losses = self._train_epoch(sampler, x, y, epoch, writer)
                seconds = round(time.perf_counter() - started, 3)
                record = {"epoch": epoch + 1, "train": train_losses, "train_seconds": seconds}
                last = epoch + 1 == cfg.trainer.epochs  # the reference also validates the last
                if validation is not None and (
                    self._is_period(epoch, cfg.trainer.val_period) or last
                ):
                    record["val"] = self._evaluate(*validation)
                self._end_epoch(record, writer)
        finally:
            if writer is not None:
                writer.close()
        return self.history

    # ------------------------------------------------------------------ epochs
    def _train_epoch(self, sampler, x, y, epoch: int, writer) -> dict[str, float]:
        self.step_module.train()
        sampler.set_epoch(epoch)
        sums: dict[str, torch.Tensor] = {}
        batches = tqdm(
            sampler,
            desc=f"epoch {epoch + 1}/{self.config.trainer.epochs}",
            unit="batch",
            disable=not (self.main and self.config.trainer.progress),
            leave=False,
        )
        for batch in batches:
            index = torch.as_tensor(batch, device=self.device)
            total, parts = self.runner(x[index], y[index])
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            self.global_step += 1
            self._accumulate(sums, total, parts)
            if writer is not None and self._is_period(
                self.global_step - 1, self.config.trainer.step_log_period
            ):
                writer.add_scalar("step/total", total.item(), self.global_step)
        return self._mean(sums, len(sampler))

    @torch.no_grad()
    def _evaluate(self, sampler: NxMSampler, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Validation losses (class-weight losses skipped: other speakers)."""
        self.step_module.eval()
        sums: dict[str, torch.Tensor] = {}
        for batch in sampler:
            index = torch.as_tensor(batch, device=self.device)
            total, parts = self.step_module(x[index], y[index], training_classes=False)
            self._accumulate(sums, total, parts)
        return self._mean(sums, len(sampler))

    def _validation_data(self, valid: LabelledEmbeddings | None):
        """Sampler and device tensors for validation, or None without validation data."""
        if valid is None or self.config.trainer.val_period <= 0:
            return None
        x, labels, _ = _class_indices(valid, "validation")
        data = self.config.data  # plain training batches: plain validation batches too
        name = data.val_sampler if data.sampler is not None else None
        sampler = self._sampler(name, labels, train=False)
        return sampler, *self._on_device(x, labels)

    def _on_device(self, x: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x).to(self.device), torch.from_numpy(labels).to(self.device)

    @staticmethod
    def _accumulate(sums: dict, total: torch.Tensor, parts: dict) -> None:
        for name, value in {"total": total, **parts}.items():
            sums[name] = sums.get(name, 0) + value.detach()

    def _mean(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        """Mean loss per batch, averaged over all processes."""
        names = sorted(sums)
        values = torch.stack([sums[n].float().reshape(()) for n in names]) / max(count, 1)
        if self.distributed:
            dist.all_reduce(values)
            values /= world_size()
        return dict(zip(names, values.tolist(), strict=True))

    @staticmethod
    def _is_period(index: int, period: int) -> bool:
        return period > 0 and (index + 1) % period == 0

    # ------------------------------------------------------------------ outputs
    def _open_outputs(self):
        """Config file and TensorBoard writer (rank 0 only)."""
        if not self.main:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.out_dir / "config.yaml")
        return self.tensorboard()

    @staticmethod
    def _log_losses(writer, split: str, losses: dict[str, float], epoch: int) -> None:
        """TensorBoard scalars under balr's tags (`val/mse`, epoch 1-based) and the reference's
        (`test/MSE`, epoch 0-based), so the reference's dashboards read balr's runs."""
        reference_mode = REFERENCE_TB_MODES[split]
        for name, value in losses.items():
            writer.add_scalar(f"{split}/{name}", value, epoch)
            label = REFERENCE_TB_LABELS.get(name, name)
            writer.add_scalar(f"{reference_mode}/{label}", value, epoch - 1)

    def _end_epoch(self, record: dict, writer) -> None:
        """Log, keep history and write checkpoints (best: val total, else train total)."""
        self.history.append(record)
        epoch = record["epoch"]
        score = record.get("val", record["train"])["total"]
        improved = score < self.best_loss
        if not self.main:
            return
        logger.info(
            "epoch %d: %s", epoch, json.dumps({k: v for k, v in record.items() if k != "epoch"})
        )
        last = epoch == self.config.trainer.epochs
        if not (self._is_period(epoch - 1, self.config.trainer.checkpoint_period) or last):
            return  # nothing written this epoch (best: the best of the epochs written)
        # as the reference: train losses every `log_period` epochs, validation losses always
        logged = (
            ("train", "val")
            if self._is_period(epoch - 1, self.config.trainer.log_period)
            else ("val",)
        )
        for split in logged:
            self._log_losses(writer, split, record.get(split, {}), epoch)
        writer.flush()
        meta = {"epoch": epoch, "losses": record, "config": OmegaConf.to_container(self.config)}
        self.model.save(self.weights_dir / "last.safetensors", **meta)
        self._save_state(epoch)
        if improved:
            self.best_loss = score
            self.model.save(self.weights_dir / "best.safetensors", **meta)
        if self._is_period(epoch - 1, self.config.trainer.save_period):
            self.model.save(self.weights_dir / f"epoch{epoch}.safetensors", **meta)
        atomic_write_text(self.out_dir / "history.json", json.dumps(self.history, indent=2))

    def _save_state(self, epoch: int) -> None:
        """Optimiser and loss state (ArcFace weights, sparsity targets) for resuming."""
        state = {
            "epoch": torch.tensor(epoch),
            "global_step": torch.tensor(self.global_step),
            "best_loss": torch.tensor(self.best_loss, dtype=torch.float64),
            "optimizer": self.optimizer.state_dict(),
            "losses": self.losses.state_dict(),
        }
        with atomic_path(self.weights_dir / "last_state.pt") as tmp:
            torch.save(state, tmp)

    def _resume(self) -> None:
        """Load `last` weights and state; training continues after the saved epoch."""
        weights = self.weights_dir / "last.safetensors"
        state_path = self.weights_dir / "last_state.pt"
        if not weights.is_file() or not state_path.is_file():
            raise ModelError(
                f"{self.weights_dir}: nothing to resume (no last.safetensors/last_state.pt)"
            )
        state = read_resume_state(state_path, self.device, tensor_shapes(self.losses))
        model_state = read_state_dict(weights)
        check_state_dict(weights, model_state, tensor_shapes(self.model))
        self.model.load_state_dict(model_state, strict=True)
        self.losses.load_state_dict(state.losses, strict=True)
        try:
            self.optimizer.load_state_dict(state.optimizer)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"{state_path}: field 'optimizer' does not fit ({detail})") from None
        self.start_epoch, self.global_step = state.epoch, state.global_step
        self.best_loss = state.best_loss
        self.history = read_history(self.out_dir / "history.json", self.start_epoch)
        logger.info("resuming %s after epoch %d", self.out_dir, self.start_epoch)


@dataclass(frozen=True)
class EncoderTraining:
    """What `train_encoder` did: the run folder and the per-epoch history."""

    save_dir: Path
    history: list[dict]

    def summary(self) -> str:
        if not self.history:
            return f"no epoch to train; weights in {self.save_dir / 'weights'}"
        last = self.history[-1]
        loss = last.get("val", last["train"])["total"]
        return f"epoch {last['epoch']}: loss {loss:.4f}; weights in {self.save_dir / 'weights'}"


@dataclass(frozen=True)
class TrainingRun:
    """How `balr train` runs: the composed `train` config (`train_config`; None: its
    defaults), the run folder (`save_dir`, None: `runs/train`; an existing one becomes
    `runs/train2`, `runs/train3`, ... unless `exist_ok` or `trainer.resume`), the device
    (None: cpu) and how the datasets are read."""

    config: DictConfig | None = None
    save_dir: Path | None = None
    exist_ok: bool = False
    device: str | None = None
    reading: DatasetReading = field(default_factory=DatasetReading)


def train_encoder(
    train_data: str | Path, val_data: str | Path, run: TrainingRun | None = None
) -> EncoderTraining:
    """`balr train` as one call: fit the encoder on the labelled embeddings of `train_data`,
    validate on `val_data` (other speakers), in `run.save_dir` (agreed by every torchrun
    process, which this call joins in one process group)."""
    run = run or TrainingRun()
    cfg = run.config if run.config is not None else train_config()
    if cfg.trainer.resume and run.save_dir is None:
        raise ConfigError("trainer.resume=true needs --save-dir (the run to continue)")
    torch_device = resolve_device(run.device)
    formats, root_dir = run.reading.audio_formats, run.reading.root_dir
    train_set = labelled_embeddings(train_data, formats, root_dir)
    val_set = labelled_embeddings(val_data, formats, root_dir)
    with session(torch_device):
        out_dir = shared_save_dir(run.save_dir, TRAIN_RUN_DIR, run.exist_ok or cfg.trainer.resume)
        resume = f"--save-dir {out_dir} trainer.resume=true"
        with stop_on_interrupt(out_dir, resume):
            history = BAETrainer(cfg, out_dir, torch_device).fit(train_set, val_set)
    return EncoderTraining(out_dir, history)
