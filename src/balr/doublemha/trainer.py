"""Training of the DoubleMHA extractor as an AM-softmax speaker classifier, validated by EER.

    trainer = DoubleMHATrainer(config, out_dir, device)
    history = trainer.fit(training_set(config), validation_pairs(config))

Each step draws one random window per recording (`window_size` seconds), optionally cut to
a random length (`randomSlicing`), and accumulates `gradientAccumulation` batches. Every
`validate_every` steps the validation pairs are scored by the cosine of their embeddings:
a better EER saves `best.pt`, `lr_patience` validations without one halve the learning
rate, `early_stopping` of them end training; `last.pt` always holds the latest state
(`requeue=true` continues from it). `train_extractor` is the whole `balr extractor train`
job inside the process group the command opens.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from balr import distributed, training
from balr.config import save_config
from balr.doublemha.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    load_checkpoint,
    restore_training,
    save_checkpoint,
)
from balr.doublemha.config import TrainConfig
from balr.doublemha.data import (
    TrainingSet,
    ValidationPairs,
    WindowDataset,
    check_feature_paths,
    random_slice,
    training_set,
    validation_pairs,
)
from balr.doublemha.features import FeatureItem, FeatureLoader
from balr.doublemha.heads import annealed_factor
from balr.doublemha.model import SpeakerClassifier
from balr.doublemha.pooling import reference_query_init
from balr.doublemha.reference import (
    newest_reference_checkpoint,
    optimizer_state_from_reference,
)
from balr.errors import ConfigError, ModelError
from balr.evaluation.metrics import eer
from balr.fileio import atomic_write_text

log = logging.getLogger(__name__)
#: the best validation EER a reference requeue starts from (its `best_EER = 50.0`, in %)
REFERENCE_REQUEUE_BEST_EER = 0.5
OPTIMIZERS = {"Adam": torch.optim.Adam, "SGD": torch.optim.SGD, "RMSprop": torch.optim.RMSprop}


@torch.no_grad()
def embed_items(
    model: SpeakerClassifier, items: list[FeatureItem], loader: FeatureLoader, batch: int = 16
) -> torch.Tensor:
    """Embeddings `(N, E)` of whole recordings, batched by similar length (padding masked)."""
    feats = [torch.from_numpy(loader(item)) for item in items]
    order = np.argsort([f.shape[0] for f in feats])
    out = torch.zeros(len(items), model.settings.embedding_size)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        lengths = torch.tensor([feats[i].shape[0] for i in chunk])
        padded = torch.nn.utils.rnn.pad_sequence([feats[i] for i in chunk], batch_first=True)
        out[chunk] = model.embed(padded.to(device), lengths.to(device)).cpu()
    return out


def validation_eer(
    model: SpeakerClassifier, valid: ValidationPairs, loader: FeatureLoader
) -> float:
    """EER (fraction) of the validation pairs scored by the cosine of their embeddings."""
    was_training = model.training
    model.eval()
    emb = F.normalize(embed_items(model, valid.items, loader), dim=1)
    scores = (emb[valid.first] * emb[valid.second]).sum(1).numpy()
    model.train(was_training)
    return eer(scores, valid.labels)[0]


class DoubleMHATrainer(training.Trainer):
    """Steps, validation, best/last checkpoints, LR halving and early stopping.

    `config` is a `TrainConfig`; `device` defaults to `config.device`. The model is built in
    `fit`, where the number of training speakers is known; `summary()` describes the run.
    """

    config: TrainConfig

    def __init__(
        self, config: TrainConfig, out_dir: str | Path, device: torch.device | str | None = None
    ):
        super().__init__(config, out_dir, device if device is not None else config.device)
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.loader = FeatureLoader(
            config.normalization, config.cache_features, config.feature_recipe
        )
        self.rng = random.Random(config.seed + distributed.rank())
        self.epoch, self.step, self.best_eer, self.stopping = 0, 0, math.inf, 0
        self.history: list[dict] = []
        self.validated_step = -1
        self.seconds = 0.0
        self.model: SpeakerClassifier | None = None
        self.valid: ValidationPairs | None = None

    def build(self, num_speakers: int) -> None:
        """Model (seeded initial weights), optimiser, and the state of `last.pt` on requeue."""
        self.settings = {**asdict(self.config), "num_spkrs": num_speakers}
        torch.manual_seed(self.config.seed)  # reproducible initial weights
        self.model = SpeakerClassifier(self.config.model_settings(num_speakers)).to(self.device)
        if self.config.query_init == "reference":  # the reference's xavier-normal queries
            reference_query_init(self.model.pooling)
        self.optimizer = self._optimizer()
        if self.config.requeue:
            self._resume()

    def _optimizer(self) -> torch.optim.Optimizer:
        if self.config.optimizer not in OPTIMIZERS:
            known = list(OPTIMIZERS)
            raise ConfigError(f"optimizer '{self.config.optimizer}': expected one of {known}")
        return OPTIMIZERS[self.config.optimizer](
            self.model.parameters(),
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
        )

    def _resume(self) -> None:
        """Continue from `last.pt` of the output directory, else (a run of the reference
        code) from its newest `.chkpt`, when there is one."""
        path = self.out_dir / LAST_NAME
        if not path.is_file():
            reference = newest_reference_checkpoint(self.out_dir)
            if reference is not None:
                self._resume_reference(reference)
                return
            log.info("requeue: no %s yet, starting from scratch", path)
            return
        payload = load_checkpoint(path, self.device)
        resumed = restore_training(path, payload, self.model, self.optimizer)
        self.epoch, self.step, self.best_eer, self.stopping = resumed
        self.say(
            f"resumed from {path}: epoch {self.epoch}, step {self.step}, "
            f"best EER {100 * self.best_eer:.2f}%"
        )

    def _resume_reference(self, path: Path) -> None:
        """The reference's requeue: weights, optimiser state, the epoch after the saved one
        and its step; the best EER and the count of validations without improvement start
        again (50 % and 0, as the reference's own requeue does)."""
        payload = load_checkpoint(path, self.device)
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as exc:
            detail = str(exc).splitlines()[0]
            raise ModelError(
                f"{path}: this reference checkpoint does not fit the configured model "
                f"({detail}); give the run's own options or start without requeue"
            ) from None
        self.optimizer.load_state_dict(
            optimizer_state_from_reference(
                payload["reference_optimizer"], self.model, self.optimizer, path
            )
        )
        self.epoch, self.step = payload["epoch"] + 1, payload["step"]
        self.best_eer, self.stopping = REFERENCE_REQUEUE_BEST_EER, 0
        self.say(f"resumed the reference run from {path}: epoch {self.epoch}, step {self.step}")

    def say(self, text: str) -> None:
        if self.main:
            tqdm.write(text)

    def _data_loader(self, train: TrainingSet) -> DataLoader:
        dataset = WindowDataset(
            train.items, self.loader, self.config.window_size, self.config.seed + distributed.rank()
        )
        sampler = DistributedSampler(dataset, seed=self.config.seed) if self.distributed else None
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=self.config.num_workers,
            drop_last=False,
            persistent_workers=self.config.num_workers > 0,
        )

    def fit(self, train: TrainingSet, valid: ValidationPairs) -> list[dict]:
        """Train until max_epochs, max_steps or early stopping; returns the validations."""
        check_feature_paths([*train.items, *valid.items], "the training and validation data")
        self.valid = valid
        self.build(train.num_speakers)
        self.net = self.wrap(self.model)
        self.writer = self.tensorboard(self.out_dir / "tensorboard")
        try:
            return self._train(train)
        finally:  # also on Ctrl-C or an error: the events logged so far reach the file
            if self.writer:
                self.writer.close()

    def _train(self, train: TrainingSet) -> list[dict]:
        """The epochs, the last validation and `last.pt` (see `fit`)."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        loader = self._data_loader(train)
        bar = tqdm(
            total=cfg.max_steps or None,
            initial=self.step,
            disable=not self.main,
            desc="train",
            unit="step",
        )
        start, done = time.time(), False
        if cfg.validate_at_start and self.step == 0:
            self._validate()
        while self.epoch < cfg.max_epochs and not done:
            if isinstance(loader.sampler, DistributedSampler):
                loader.sampler.set_epoch(self.epoch)
            done = self._epoch(loader, bar) or self._end_of_epoch()
            self.epoch += 1
        bar.close()
        if self.validated_step != self.step:
            self._validate()
        self._save(LAST_NAME)
        self.seconds = round(time.time() - start, 1)
        self.say(f"finished: {self.step} steps, best validation EER {100 * self.best_eer:.2f}%")
        return self.history

    def summary(self) -> dict:
        """Best EER, steps, epochs, training seconds and every validation (`summary.json`)."""
        return {
            "best_eer": self.best_eer,
            "steps": self.step,
            "epochs": self.epoch,
            "seconds": self.seconds,
            "validations": self.history,
        }

    def _epoch(self, loader: DataLoader, bar: tqdm) -> bool:
        """One pass over the data; True when training must stop."""
        self.net.train()
        running, batches = 0.0, 0
        for batch, (windows, labels) in enumerate(loader, 1):
            if self.config.randomSlicing:
                windows = random_slice(windows, self.rng)
            logits = self.net(windows.to(self.device), labels.to(self.device), step=self.step)
            loss = F.cross_entropy(logits, labels.to(self.device))
            loss.backward()  # summed over the accumulated batches, as the reference does
            running, batches = running + loss.item(), batches + 1
            if batch % self.config.gradientAccumulation:
                continue
            self.optimizer.step()
            self.optimizer.zero_grad()
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / batches:.3f}", epoch=self.epoch)
            if self.step % self.config.print_every == 0:
                self._log_training(running / batches)
                running, batches = 0.0, 0
            if self.step % self.config.validate_every == 0:
                self._validate()
            if self.config.max_steps and self.step >= self.config.max_steps:
                return True
        return False

    def _log_training(self, loss: float) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self.say(f"epoch {self.epoch} step {self.step}: loss {loss:.3f} lr {lr:.2e}")
        if self.writer:
            self.writer.add_scalar("train/loss", loss, self.step)
            self.writer.add_scalar("train/lr", lr, self.step)
            if self.config.annealing:
                self.writer.add_scalar(
                    "train/annealed_factor", annealed_factor(self.step), self.step
                )

    def _end_of_epoch(self) -> bool:
        """The reference schedule, checked after every epoch on every rank: stop when more
        than `early_stopping` validations in a row brought no improvement; else halve the
        learning rate (Adam, SGD; not RMSprop) when `stopping + 1` is a multiple of
        `lr_patience` (after 14, 29, ... such validations with the default 15; again at each
        epoch end while the count stays there). True to stop."""
        cfg = self.config
        if self.stopping > cfg.early_stopping:
            self.say(f"early stop after {self.stopping} validations without improvement")
            return True
        if (self.stopping + 1) % cfg.lr_patience == 0 and cfg.optimizer != "RMSprop":
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.5
            lr = self.optimizer.param_groups[0]["lr"]
            self.say(f"{self.stopping} validations without improvement: lr halved to {lr:.2e}")
        return False

    def _validate(self) -> None:
        """EER on the pairs (main process) and checkpoints; every rank learns the count of
        validations without improvement, so the epoch-end schedule agrees everywhere."""
        self.validated_step = self.step  # on every rank: all of them join the broadcast below
        count = torch.zeros(1, device=self.device)  # nccl broadcasts device tensors only
        if self.main:
            self._validate_main()
            count[0] = self.stopping
        if self.distributed:
            torch.distributed.broadcast(count, src=0)
        self.stopping = int(count[0])

    def _validate_main(self) -> None:
        rate = validation_eer(self.model, self.valid, self.loader)
        improved = rate < self.best_eer
        self.best_eer = min(rate, self.best_eer)
        self.stopping = 0 if improved else self.stopping + 1
        self.history.append({"step": self.step, "epoch": self.epoch, "eer": rate})
        self.say(
            f"validation epoch {self.epoch} step {self.step}: EER {100 * rate:.2f}% "
            f"(best {100 * self.best_eer:.2f}%{', saved best' if improved else ''})"
        )
        if self.writer:
            self.writer.add_scalar("valid/eer", rate, self.step)
        if improved:
            self._save(BEST_NAME)
        self._save(LAST_NAME)

    def _save(self, name: str) -> None:
        if self.main:
            save_checkpoint(
                self.out_dir / name,
                self.model,
                self.optimizer,
                self.settings,
                self.epoch,
                self.step,
                best_eer=self.best_eer,
                stopping=self.stopping,
            )


def train_extractor(
    config: TrainConfig, out_dir: str | Path, device: torch.device | str | None = None
) -> dict:
    """`balr extractor train` inside the command's process group: read the data, write
    `config.yaml`, train, write `summary.json` (main process); returns the summary."""
    out_dir = Path(out_dir)
    config.out_dir = str(out_dir)
    train, valid = training_set(config), validation_pairs(config)
    trainer = DoubleMHATrainer(config, out_dir, device)
    if trainer.main:
        save_config(asdict(config), out_dir / "config.yaml")
        trainer.say(
            f"training on {len(train.items)} recordings of {train.num_speakers} speakers; "
            f"validating on {len(valid.labels)} pairs ({int(valid.labels.sum())} "
            f"same-speaker) of {len(valid.items)} recordings; output {out_dir}"
        )
    with training.stop_on_interrupt(out_dir, f"out_dir={out_dir} requeue=true"):
        trainer.fit(train, valid)
    summary = trainer.summary()
    if trainer.main:
        atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
