"""Batch extraction: a model over a dataset's recordings, one embedding vector each, resumable.

`extract_embeddings(dataset, model, options)` runs `EmbeddingExtraction`; the `balr extract`
job around it (config, model, dataset, shard) is `balr.embeddings.extract`.

DataLoader workers decode audio (and run the optional VAD); the main process keeps a pool of
decoded items, sorts it by length and runs the model on batches of similar length. Each vector
is saved (atomically) as soon as it is computed, so an interrupted run loses nothing saved and
a second run skips what exists. Files that cannot be read or are too short are reported in
`extract_errors.tsv` (id, path, reason) and the run goes on.

Recordings longer than `max_duration_s` are read window by window (`window_s` each, via
`load_audio(offset_s, duration_s)`), embedded like any item, and averaged (weighted by window
length), so memory stays bounded by one window whatever the file's length.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from balr.audio import audio_info, load_audio
from balr.embeddings.base import EmbeddingModel
from balr.embeddings.vad import VAD_METHODS, apply_vad
from balr.errors import AudioError, BalrError, ConfigError, Interrupted
from balr.fileio import atomic_write_text

log = logging.getLogger(__name__)
ERRORS_FILE = "extract_errors.tsv"


@dataclass
class ExtractionOptions:
    """How extraction batches, decodes, windows and filters recordings."""

    batch_size: int = 32
    num_workers: int = 2
    max_duration_s: float = 60.0  # longer recordings are averaged over windows
    window_s: float = 30.0
    min_duration_s: float = 0.5  # shorter recordings (after VAD) are reported, not embedded
    vad: str = "none"  # none, energy or webrtc
    bucket_batches: int = 4  # batches' worth of items sorted by length together
    max_batch_seconds: float = 200.0  # audio seconds per model call (bounds memory)
    force: bool = False

    def check(self) -> None:
        """Raise ConfigError on settings that cannot work."""
        if self.vad not in VAD_METHODS:
            raise ConfigError(f"vad '{self.vad}': expected one of {', '.join(VAD_METHODS)}")
        if self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError("batch_size must be >= 1 and num_workers >= 0")
        if not 0 < self.window_s <= self.max_duration_s:
            raise ConfigError("window_s must be > 0 and <= max_duration_s")


@dataclass
class Segment:
    """A decoded recording or window of one (wave None: unusable window), or a failure."""

    index: int
    part: int = 0
    parts: int = 1
    wave: np.ndarray | None = None
    error: str | None = None


@dataclass
class ExtractionReport:
    """What a run did: counts, failures (id, path, reason) and audio/wall seconds."""

    total: int = 0
    skipped: int = 0
    succeeded: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    model: str = ""
    errors_path: Path | None = None

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio embedded per second of wall time."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self, where: str = "") -> str:
        """One line: counts, audio minutes, speed (`where`, e.g. " on rank 1/2", after the
        counts)."""
        return (
            f"{self.model}: embedded {self.succeeded}, skipped {self.skipped} existing, "
            f"failed {len(self.failures)} of {self.total} items{where} "
            f"({self.audio_seconds / 60:.1f} min of audio in {self.wall_seconds:.1f} s, "
            f"{self.real_time_factor:.0f}x real time)"
        )


def decode_segments(
    index: int, path: Path, sample_rate: int, opts: ExtractionOptions, min_samples: int
) -> Iterator[Segment]:
    """Decode one item: the whole file, or its windows when longer than `max_duration_s`."""
    if path.is_file() and path.stat().st_size == 0:
        raise AudioError(f"{path}: audio file is empty (0 bytes)")
    frames, rate = audio_info(path)
    duration = frames / rate if rate else 0.0
    if duration <= opts.max_duration_s:
        wave = apply_vad(load_audio(path, sample_rate), sample_rate, opts.vad)
        if len(wave) < min_samples:
            raise AudioError(
                f"{path}: too short ({len(wave) / sample_rate:.2f} s of audio, "
                f"minimum {min_samples / sample_rate:.2f} s)"
            )
        yield Segment(index, wave=wave)
        return
    parts = math.ceil(duration / opts.window_s)
    step = duration / parts
    for part in range(parts):
        wave = load_audio(path, sample_rate, offset_s=part * step, duration_s=step)
        wave = apply_vad(wave, sample_rate, opts.vad)
        yield Segment(index, part, parts, wave if len(wave) >= min_samples else None)


class DecodeStream(torch.utils.data.IterableDataset):
    """Items decoded in DataLoader workers (each worker takes every n-th item)."""

    def __init__(
        self,
        jobs: list[tuple[int, Path]],
        sample_rate: int,
        opts: ExtractionOptions,
        min_samples: int,
    ):
        super().__init__()
        self.jobs, self.sample_rate, self.opts, self.min_samples = (
            jobs,
            sample_rate,
            opts,
            min_samples,
        )

    def __iter__(self) -> Iterator[Segment]:
        info = torch.utils.data.get_worker_info()
        jobs = self.jobs if info is None else self.jobs[info.id :: info.num_workers]
        for index, path in jobs:
            yield from self._safe_segments(index, path)

    def _safe_segments(self, index: int, path: Path) -> Iterator[Segment]:
        """Segments of one item; any failure becomes one error Segment (the job goes on)."""
        part = 0
        try:
            for segment in decode_segments(
                index, path, self.sample_rate, self.opts, self.min_samples
            ):
                part += 1
                yield segment
        except BalrError as exc:
            yield Segment(index, part=part, error=str(exc))
        except Exception as exc:  # a bad file must not stop a million-file job
            yield Segment(index, part=part, error=f"{path}: {type(exc).__name__}: {exc}")


class _Accumulator:
    """Weighted sum of window embeddings of one long recording."""

    def __init__(self, parts: int):
        self.parts, self.seen, self.weight, self.total = parts, 0, 0.0, None

    def add(self, vector: np.ndarray | None, weight: float) -> None:
        self.seen += 1
        if vector is not None and weight > 0:
            scaled = vector.astype(np.float64) * weight
            self.total = scaled if self.total is None else self.total + scaled
            self.weight += weight

    @property
    def complete(self) -> bool:
        return self.seen >= self.parts


class EmbeddingExtraction:
    """Runs a model over a dataset's missing embeddings and saves them as they come."""

    def __init__(self, dataset, model: EmbeddingModel, opts: ExtractionOptions):
        opts.check()
        self.ds, self.model, self.opts = dataset, model, opts
        self.min_samples = max(
            model.min_samples, int(round(opts.min_duration_s * model.sample_rate))
        )
        self.report = ExtractionReport(total=len(dataset), model=model.name)
        self._partial: dict[int, _Accumulator] = {}
        self._failed: set[int] = set()

    def run(self, errors_path: Path | None = None, progress: bool = True) -> ExtractionReport:
        """Embed every item that lacks an embedding (all with `force`); write the error report."""
        start = time.perf_counter()
        jobs = self._jobs()
        self.report.skipped = len(self.ds) - len(jobs) - len(self.report.failures)
        bar = tqdm(total=len(jobs), unit="file", disable=not progress, dynamic_ncols=True)
        interrupted: Interrupted | None = None
        try:
            with self.ds.vector_writer("emb") as writer:
                self._writer, self._bar, self._start = writer, bar, start
                try:
                    self._consume(self._loader(jobs))
                except KeyboardInterrupt:
                    interrupted = Interrupted(self._interrupted_message(writer.location))
            # the writer is closed (a store merged) before the interrupt goes on
            if interrupted is not None:
                raise interrupted
        finally:
            bar.close()
            self.report.wall_seconds = time.perf_counter() - start
            if errors_path is not None:
                write_error_report(errors_path, self.report.failures)
                self.report.errors_path = errors_path
        return self.report

    def _interrupted_message(self, location: str) -> str:
        """What Ctrl-C leaves behind and how to go on."""
        return (
            f"interrupted: {self.report.succeeded} embeddings saved by this run to {location} "
            f"({self.report.skipped} were there before); run the same command again to resume "
            "(existing embeddings are skipped unless --force)"
        )

    def _jobs(self) -> list[tuple[int, Path]]:
        jobs = []
        for i, item in enumerate(self.ds.items):
            if not self.opts.force and self.ds.has_vector(i, "emb"):
                continue
            if item.audio is None:
                self.report.failures.append((item.id, "", "item has no audio file"))
                continue
            jobs.append((i, Path(item.audio)))
        return jobs

    def _loader(self, jobs: list[tuple[int, Path]]) -> torch.utils.data.DataLoader:
        stream = DecodeStream(jobs, self.model.sample_rate, self.opts, self.min_samples)
        workers = min(self.opts.num_workers, len(jobs))
        return torch.utils.data.DataLoader(
            stream,
            batch_size=None,
            num_workers=workers,
            collate_fn=_identity,
            worker_init_fn=_single_thread_worker,
            prefetch_factor=4 if workers else None,
        )

    def _consume(self, loader) -> None:
        """Pool decoded items until `bucket_batches` batches (or that much audio) are ready."""
        pool: list[Segment] = []
        pooled_samples = 0
        pool_size = self.opts.batch_size * self.opts.bucket_batches
        pool_samples = self.opts.max_batch_seconds * self.opts.bucket_batches
        pool_samples *= self.model.sample_rate
        for segment in loader:
            if segment.error is not None:
                self._fail(segment.index, segment.error)
            elif segment.wave is None:
                self._finish(segment.index, None, segment.parts, 0)
            else:
                pool.append(segment)
                pooled_samples += len(segment.wave)
                if len(pool) >= pool_size or pooled_samples >= pool_samples:
                    self._run_pool(pool)
                    pool, pooled_samples = [], 0
        self._run_pool(pool)

    def _run_pool(self, pool: list[Segment]) -> None:
        """Sort by length and embed in batches of similar length."""
        pool.sort(key=lambda s: len(s.wave))
        for batch in self._batches(pool):
            for segment, vector in zip(batch, self._embed_batch(batch), strict=True):
                self._finish(segment.index, vector, segment.parts, len(segment.wave))

    def _batches(self, pool: list[Segment]) -> Iterator[list[Segment]]:
        limit = self.opts.max_batch_seconds * self.model.sample_rate
        batch: list[Segment] = []
        for segment in pool:
            longest = len(segment.wave)
            if batch and (len(batch) >= self.opts.batch_size or (len(batch) + 1) * longest > limit):
                yield batch
                batch = []
            batch.append(segment)
        if batch:
            yield batch

    def _embed_batch(self, batch: list[Segment]) -> list[np.ndarray | None]:
        """Vectors of a batch; a failing batch is retried item by item to isolate the bad one."""
        try:
            return list(self._forward([s.wave for s in batch]))
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0].index, f"model failed: {type(exc).__name__}: {exc}")
                return [None]
            return [self._embed_batch([s])[0] for s in batch]

    def _forward(self, waves: list[np.ndarray]) -> np.ndarray:
        lengths = torch.tensor([len(w) for w in waves])
        padded = torch.zeros(len(waves), int(lengths.max()))
        for row, wave in enumerate(waves):
            padded[row, : len(wave)] = torch.from_numpy(wave)
        with torch.inference_mode():
            vectors = self.model.embed(padded.to(self.model.device), lengths)
        return vectors.float().cpu().numpy()

    def _finish(self, index: int, vector: np.ndarray | None, parts: int, samples: int) -> None:
        """Save a whole-item vector, or add a window to its recording's running average."""
        if index in self._failed:
            return
        self.report.audio_seconds += samples / self.model.sample_rate
        if parts == 1:
            if vector is not None:
                self._save(index, vector)
            return
        acc = self._partial.setdefault(index, _Accumulator(parts))
        acc.add(vector, float(samples))
        if acc.complete:
            del self._partial[index]
            if acc.total is None:
                self._fail(index, f"{self.ds.items[index].audio}: no usable audio in any window")
            else:
                self._save(index, self._average(acc))

    def _average(self, acc: _Accumulator) -> np.ndarray:
        mean = (acc.total / acc.weight).astype(np.float32)
        if self.model.normalized:
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
        return mean

    def _save(self, index: int, vector: np.ndarray) -> None:
        self._writer.put(index, vector.astype(np.float32))
        self.report.succeeded += 1
        self._tick()

    def _fail(self, index: int, reason: str) -> None:
        if index in self._failed:
            return
        self._failed.add(index)
        self._partial.pop(index, None)
        item = self.ds.items[index]
        self.report.failures.append((item.id, str(item.audio or ""), reason))
        log.warning("skipped %s: %s", item.id, reason)
        self._tick()

    def _tick(self) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.update(1)
        self._bar.set_postfix(
            audio_h=f"{self.report.audio_seconds / 3600:.2f}",
            speed=f"{self.report.audio_seconds / elapsed:.0f}x RT",
            failed=len(self.report.failures),
            refresh=False,
        )


def extract_embeddings(
    dataset,
    model: EmbeddingModel,
    opts: ExtractionOptions | None = None,
    errors_path: str | Path | None = None,
    progress: bool = True,
) -> ExtractionReport:
    """Embed a dataset's items that lack an embedding; see the module docstring."""
    errors = Path(errors_path) if errors_path is not None else None
    return EmbeddingExtraction(dataset, model, opts or ExtractionOptions()).run(errors, progress)


def write_error_report(path: str | Path, failures: list[tuple[str, str, str]]) -> None:
    """Write `id, path, reason` rows as TSV (atomically); remove a stale report if none."""
    path = Path(path)
    if not failures:
        path.unlink(missing_ok=True)
        return
    buffer = io.StringIO()
    out = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    out.writerow(["id", "path", "reason"])
    out.writerows(failures)
    atomic_write_text(path, buffer.getvalue())


def _identity(segment: Segment) -> Segment:
    return segment


def _single_thread_worker(_: int) -> None:
    """Decoding workers use one torch thread each (the cores belong to the model) and
    ignore Ctrl-C: the main process stops them, which is prompt only when they are alive
    to hear it (an interrupted worker blocks on its full queue until it is killed)."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
