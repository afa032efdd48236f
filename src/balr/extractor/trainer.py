"""Training of the DoubleMHA extractor as an AM-softmax speaker classifier, validated by EER.

Inputs are either the seed's lists (train labels `path label -1`, client/impostor pair
files, data directories) or dataset CSVs with a speaker column (trials given or generated).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from balr import distributed
from balr.errors import ConfigError, DataError
from balr.extractor.checkpoint import BEST_NAME, LAST_NAME, load_checkpoint, save_checkpoint
from balr.extractor.data import (
    FeatureItem,
    FeatureLoader,
    WindowDataset,
    audio_item,
    equal_error_rate,
    generate_pairs,
    random_slice,
    read_pairs,
    read_train_labels,
    seed_item,
    usable_items,
)
from balr.extractor.model import ModelSettings, SpeakerClassifier, annealed_factor

log = logging.getLogger(__name__)
OPTIMIZERS = {"Adam": torch.optim.Adam, "SGD": torch.optim.SGD, "RMSprop": torch.optim.RMSprop}


@dataclass
class ExtractorTrainConfig(ModelSettings):
    """`balr extractor train` settings: the model's (inherited) plus training ones; seed
    options keep their names and defaults. `num_spkrs` is set from the training data."""

    train_labels_path: str | None = None
    valid_clients: str | None = None
    valid_impostors: str | None = None
    train_data_dir: str = "."
    valid_data_dir: str = "."
    train_csv: str | None = None
    valid_csv: str | None = None
    valid_trials: str | None = None
    features_dir: str | None = None
    max_valid_pairs: int = 2000
    out_dir: str | None = None
    model_name: str = "CNN"
    window_size: float = 3.5
    randomSlicing: bool = False  # noqa: N815 (seed option name)
    optimizer: str = "Adam"
    learning_rate: float = 1e-4
    weight_decay: float = 1e-3
    batch_size: int = 64
    gradientAccumulation: int = 2  # noqa: N815 (seed option name)
    max_epochs: int = 1000000
    max_steps: int = 0
    early_stopping: int = 25
    lr_patience: int = 15
    print_every: int = 1000
    requeue: bool = False
    validate_every: int = 10000
    validate_at_start: bool = False
    num_workers: int = 2
    cache_features: bool = True
    seed: int = 1234
    threads: int = 0
    device: str | None = None


@dataclass
class TrainingData:
    train: list[FeatureItem]
    num_speakers: int
    valid: list[FeatureItem]
    pair_a: np.ndarray
    pair_b: np.ndarray
    pair_labels: np.ndarray


def prepare_data(cfg: ExtractorTrainConfig) -> TrainingData:
    """Training items with labels and validation pairs, from seed lists or dataset CSVs."""
    if cfg.train_labels_path:
        train, num_speakers = _seed_train_items(cfg)
    elif cfg.train_csv:
        train, num_speakers = _csv_train_items(cfg)
    else:
        raise ConfigError("no training data: set train_labels_path=... or train_csv=...")
    if cfg.valid_clients and cfg.valid_impostors:
        valid, a, b, labels = _seed_pairs(cfg)
    elif cfg.valid_csv:
        valid, a, b, labels = _csv_pairs(cfg)
    else:
        raise ConfigError("no validation: set valid_clients= and valid_impostors=, or valid_csv=")
    return TrainingData(train, num_speakers, valid, a, b, labels)


def _seed_train_items(cfg: ExtractorTrainConfig) -> tuple[list[FeatureItem], int]:
    rows = read_train_labels(cfg.train_labels_path)
    items = usable_items([seed_item(cfg.train_data_dir, rel, label) for rel, label in rows])
    if not items:
        raise DataError(f"{cfg.train_labels_path}: no readable training recording")
    return items, max(label for _, label in rows) + 1


def _seed_pairs(cfg: ExtractorTrainConfig):
    clients, impostors = read_pairs(cfg.valid_clients), read_pairs(cfg.valid_impostors)
    names = sorted({p for pair in clients + impostors for p in pair})
    items = usable_items([seed_item(cfg.valid_data_dir, rel) for rel in names])
    index = {item.name: i for i, item in enumerate(items)}
    pairs = [(a, b, 1) for a, b in clients] + [(a, b, 0) for a, b in impostors]
    kept = [(index[a], index[b], t) for a, b, t in pairs if a in index and b in index]
    if len(kept) < len(pairs):
        log.warning("skipping %d validation pairs with missing recordings", len(pairs) - len(kept))
    a, b, labels = (np.array(col) for col in zip(*kept, strict=True)) if kept else ([], [], [])
    return items, np.asarray(a, int), np.asarray(b, int), np.asarray(labels, np.int8)


def _load_dataset(path: str):
    from balr.data import AudioDataset

    return AudioDataset.from_path(path)


def _dataset_items(path: str, cfg: ExtractorTrainConfig) -> tuple[list[FeatureItem], list]:
    ds = _load_dataset(path)
    root = Path(path).parent if Path(path).is_file() else Path(path)
    features_dir = Path(cfg.features_dir) if cfg.features_dir else None
    items, speakers = [], []
    for item in ds.items:
        if item.audio is None or item.speaker is None:
            log.warning("skipping %s: no audio or no speaker", item.id)
            continue
        items.append(audio_item(item.id, Path(item.audio), -1, features_dir, root))
        speakers.append(item.speaker)
    return items, speakers


def _csv_train_items(cfg: ExtractorTrainConfig) -> tuple[list[FeatureItem], int]:
    items, speakers = _dataset_items(cfg.train_csv, cfg)
    names = sorted(set(speakers))
    code = {name: i for i, name in enumerate(names)}
    for item, speaker in zip(items, speakers, strict=True):
        item.label = code[speaker]
    if len(names) < 2:
        raise DataError(f"{cfg.train_csv}: training needs at least 2 speakers")
    return items, len(names)


def _csv_pairs(cfg: ExtractorTrainConfig):
    items, speakers = _dataset_items(cfg.valid_csv, cfg)
    if not cfg.valid_trials:
        a, b, labels = generate_pairs(speakers, cfg.max_valid_pairs, cfg.seed)
        return items, a, b, labels
    from balr.data import load_trials

    trials = load_trials(cfg.valid_trials)
    index = {item.name: i for i, item in enumerate(items)}
    rows = list(zip(trials.enrollment, trials.test, strict=True))
    unknown = [ids for pair in rows for ids in pair if len(ids) != 1 or ids[0] not in index]
    if unknown:
        raise DataError(
            f"{cfg.valid_trials}: id cell {','.join(unknown[0])} is not one id of {cfg.valid_csv}"
        )
    a = np.array([index[e[0]] for e, _ in rows])
    b = np.array([index[t[0]] for _, t in rows])
    labels = (np.asarray(speakers)[a] == np.asarray(speakers)[b]).astype(np.int8)
    return items, a, b, labels


def model_settings(cfg: ExtractorTrainConfig, num_speakers: int) -> ModelSettings:
    """The architecture part of the training config."""
    return ModelSettings.from_dict({**asdict(cfg), "num_spkrs": num_speakers})


@torch.no_grad()
def embed_items(model: SpeakerClassifier, items, loader: FeatureLoader, batch: int = 16):
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


def validation_eer(model: SpeakerClassifier, data: TrainingData, loader: FeatureLoader) -> float:
    """Cosine-scored EER (fraction) of the validation pairs."""
    was_training = model.training
    model.eval()
    emb = F.normalize(embed_items(model, data.valid, loader), dim=1)
    scores = (emb[data.pair_a] * emb[data.pair_b]).sum(1).numpy()
    model.train(was_training)
    return equal_error_rate(scores, data.pair_labels)


class Trainer:
    """Steps, validation, best/last checkpoints, LR halving and early stopping."""

    def __init__(self, cfg: ExtractorTrainConfig, data: TrainingData, out_dir: Path):
        self.cfg, self.data, self.out_dir = cfg, data, out_dir
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = distributed.resolve_device(cfg.device)
        self.distributed = distributed.init_distributed(self.device)
        self.main = distributed.is_main_process()
        self.settings = {**asdict(cfg), "num_spkrs": data.num_speakers}
        torch.manual_seed(cfg.seed)  # reproducible initial weights
        self.model = SpeakerClassifier(model_settings(cfg, data.num_speakers)).to(self.device)
        self.optimizer = self._optimizer()
        self.loader = FeatureLoader(cfg.normalization, cfg.cache_features)
        self.rng = random.Random(cfg.seed + distributed.rank())
        self.epoch, self.step, self.best_eer, self.stopping = 0, 0, math.inf, 0
        self.history: list[dict] = []
        self.validated_step = -1
        if cfg.requeue:
            self._resume()
        self.net = self._wrap(self.model)
        self.writer = self._tensorboard()

    def _optimizer(self) -> torch.optim.Optimizer:
        if self.cfg.optimizer not in OPTIMIZERS:
            known = list(OPTIMIZERS)
            raise ConfigError(f"optimizer '{self.cfg.optimizer}': expected one of {known}")
        return OPTIMIZERS[self.cfg.optimizer](
            self.model.parameters(), lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay
        )

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _tensorboard(self):
        if not self.main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def _resume(self) -> None:
        """Continue from `last.pt` of the output directory, when there is one."""
        path = self.out_dir / LAST_NAME
        if not path.is_file():
            log.info("requeue: no %s yet, starting from scratch", path)
            return
        payload = load_checkpoint(path, self.device)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.epoch, self.step = payload["epoch"], payload["step"]
        state = payload["state"]
        self.best_eer, self.stopping = state.get("best_eer", math.inf), state.get("stopping", 0)
        self._say(
            f"resumed from {path}: epoch {self.epoch}, step {self.step}, "
            f"best EER {100 * self.best_eer:.2f}%"
        )

    def _say(self, text: str) -> None:
        if self.main:
            tqdm.write(text)

    def _data_loader(self) -> DataLoader:
        dataset = WindowDataset(
            self.data.train, self.loader, self.cfg.window_size, self.cfg.seed + distributed.rank()
        )
        sampler = DistributedSampler(dataset, seed=self.cfg.seed) if self.distributed else None
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=self.cfg.num_workers,
            drop_last=False,
            persistent_workers=self.cfg.num_workers > 0,
        )

    def fit(self) -> dict:
        """Train until max_epochs, max_steps or early stopping; returns a summary."""
        torch.manual_seed(self.cfg.seed)
        loader = self._data_loader()
        bar = tqdm(
            total=self.cfg.max_steps or None,
            initial=self.step,
            disable=not self.main,
            desc="train",
            unit="step",
        )
        start, done = time.time(), False
        if self.cfg.validate_at_start and self.step == 0:
            self._validate()
        while self.epoch < self.cfg.max_epochs and not done:
            if isinstance(loader.sampler, DistributedSampler):
                loader.sampler.set_epoch(self.epoch)
            done = self._epoch(loader, bar)
            self.epoch += 1
        bar.close()
        if self.validated_step != self.step:
            self._validate()
        self._save(LAST_NAME)
        summary = {
            "best_eer": self.best_eer,
            "steps": self.step,
            "epochs": self.epoch,
            "seconds": round(time.time() - start, 1),
            "validations": self.history,
        }
        self._say(f"finished: {self.step} steps, best validation EER {100 * self.best_eer:.2f}%")
        if self.writer:
            self.writer.close()
        distributed.cleanup_distributed()
        return summary

    def _epoch(self, loader: DataLoader, bar: tqdm) -> bool:
        """One pass over the data; True when training must stop."""
        self.net.train()
        running, batches = 0.0, 0
        for batch, (windows, labels) in enumerate(loader, 1):
            if self.cfg.randomSlicing:
                windows = random_slice(windows, self.rng)
            logits = self.net(windows.to(self.device), labels.to(self.device), step=self.step)
            loss = F.cross_entropy(logits, labels.to(self.device))
            (loss / self.cfg.gradientAccumulation).backward()
            running, batches = running + loss.item(), batches + 1
            if batch % self.cfg.gradientAccumulation:
                continue
            self.optimizer.step()
            self.optimizer.zero_grad()
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / batches:.3f}", epoch=self.epoch)
            if self.step % self.cfg.print_every == 0:
                self._log_training(running / batches)
                running, batches = 0.0, 0
            if self.step % self.cfg.validate_every == 0 and self._validate():
                return True
            if self.cfg.max_steps and self.step >= self.cfg.max_steps:
                return True
        return False

    def _log_training(self, loss: float) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self._say(f"epoch {self.epoch} step {self.step}: loss {loss:.3f} lr {lr:.2e}")
        if self.writer:
            self.writer.add_scalar("train/loss", loss, self.step)
            self.writer.add_scalar("train/lr", lr, self.step)
            if self.cfg.annealing:
                self.writer.add_scalar(
                    "train/annealed_factor", annealed_factor(self.step), self.step
                )

    def _validate(self) -> bool:
        """EER on the pairs (main process), checkpoints, LR halving; True to stop early."""
        self.validated_step = self.step  # on every rank: all of them join the broadcast below
        flags = torch.zeros(2)
        if self.main:
            flags[0] = float(self._validate_main())
            flags[1] = self.optimizer.param_groups[0]["lr"]
        if self.distributed:
            torch.distributed.broadcast(flags, src=0)
            for group in self.optimizer.param_groups:
                group["lr"] = float(flags[1])
        return bool(flags[0])

    def _validate_main(self) -> bool:
        eer = validation_eer(self.model, self.data, self.loader)
        improved = eer < self.best_eer
        self.best_eer = min(eer, self.best_eer)
        self.stopping = 0 if improved else self.stopping + 1
        self.history.append({"step": self.step, "epoch": self.epoch, "eer": eer})
        self._say(
            f"validation epoch {self.epoch} step {self.step}: EER {100 * eer:.2f}% "
            f"(best {100 * self.best_eer:.2f}%{', saved best' if improved else ''})"
        )
        if self.writer:
            self.writer.add_scalar("valid/eer", eer, self.step)
        if improved:
            self._save(BEST_NAME)
        if not improved and self.stopping % self.cfg.lr_patience == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.5
            self._say(
                f"no improvement in {self.stopping} validations: lr halved to "
                f"{self.optimizer.param_groups[0]['lr']:.2e}"
            )
        self._save(LAST_NAME)
        stop = self.cfg.early_stopping > 0 and self.stopping >= self.cfg.early_stopping
        if stop:
            self._say(f"early stop after {self.stopping} validations without improvement")
        return stop

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
