"""Batch extraction: a model over a dataset's recordings, one embedding vector each, resumable.

`extract_embeddings(dataset, model, options)` runs `EmbeddingExtraction`; the `balr extract`
job around it (config, model, dataset, shard) is `balr.embeddings.extract`.

DataLoader workers decode audio (and run the optional VAD); the main process keeps a pool of
decoded items, sorts it by length and runs the model on batches of similar length. Each vector
is saved (atomically) as soon as it is computed, so an interrupted run loses nothing saved and
a second run skips what exists. Files that cannot be read, are too short or hold too little
speech (`min_speech_s` of net speech, `balr.embeddings.vad.measure_speech`) are reported in
`extract_errors.tsv` (id, path, reason) and the run goes on. The net speech duration of each
embedded recording is appended to `speech_durations.tsv` (id, path, speech_s) as its vector is
saved (`balr.data.speech.SpeechLog`), and its channel profile (`balr.conditions.channel.
channel_profile` of the decoded 16 kHz wave the model embeds, computed in the decoding worker)
to `channel_profiles.tsv` (`balr.data.channel_profiles.ChannelProfileLog`); both files are
tidied (one row per id) when the run ends.

Recordings longer than `max_duration_s` are read window by window (`window_s` each, via
`load_audio(offset_s, duration_s)`), embedded like any item, and averaged (weighted by window
length), so memory stays bounded by one window whatever the file's length; their channel
profile is the mean of the windows' profiles weighted the same way, which approximates the
whole file's (`WindowAverage`).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from balr.conditions.channel import channel_profile
from balr.data.channel_profiles import ChannelProfileLog
from balr.data.ledger import (
    LedgerRow,
    MadeFrom,
    content_stamp,
    file_stamp,
    made_by_other,
    model_digest,
)
from balr.data.speech import SpeechLog
from balr.data.validation import BadVector, describe_bad
from balr.embeddings.base import EmbeddingModel
from balr.embeddings.report import ExtractionReport, write_error_report
from balr.embeddings.segments import (  # noqa: F401  (ExtractionOptions: re-exported)
    ExtractionOptions,
    Segment,
    WindowAverage,
    decode_segments,
)
from balr.embeddings.vad import require_speech
from balr.errors import AudioError, BalrError, DataError, Interrupted
from balr.fileio import interrupt_deferred

log = logging.getLogger(__name__)


class DecodeStream(torch.utils.data.IterableDataset):
    """Items decoded in DataLoader workers (each worker takes every n-th item)."""

    def __init__(
        self,
        jobs: list[tuple[int, Path]],
        sample_rate: int,
        opts: ExtractionOptions,
        min_samples: int,
        stamp: bool = False,
        profiles: bool = False,
    ):
        super().__init__()
        self.jobs, self.sample_rate, self.opts, self.min_samples = (
            jobs,
            sample_rate,
            opts,
            min_samples,
        )
        self.stamp = stamp  # hash each file for the ledger (`balr.data.ledger.content_stamp`)
        self.profiles = profiles  # the channel profile of each decoded wave, here in the worker

    def __iter__(self) -> Iterator[Segment]:
        info = torch.utils.data.get_worker_info()
        jobs = self.jobs if info is None else self.jobs[info.id :: info.num_workers]
        for index, path in jobs:
            yield from self._safe_segments(index, path)

    def _safe_segments(self, index: int, path: Path) -> Iterator[Segment]:
        """Segments of one item; any failure becomes one error Segment (the job goes on)."""
        part = 0
        try:
            stamp = content_stamp(path) if self.stamp else ""  # reads it into the page cache
            for segment in decode_segments(
                index, path, self.sample_rate, self.opts, self.min_samples
            ):
                part += 1
                segment.stamp = stamp
                if self.profiles and segment.wave is not None:
                    segment.profile = _profile(segment.wave, self.sample_rate)
                yield segment
        except BalrError as exc:
            yield Segment(index, part=part, error=str(exc))
        except Exception as exc:  # a bad file must not stop a million-file job
            yield Segment(index, part=part, error=f"{path}: {type(exc).__name__}: {exc}")


class EmbeddingExtraction:
    """Runs a model over a dataset's missing embeddings and saves them as they come."""

    def __init__(self, dataset, model: EmbeddingModel, opts: ExtractionOptions, save: bool = True):
        opts.check()
        self.ds, self.model, self.opts, self.save = dataset, model, opts, save
        self.min_samples = max(
            model.min_samples, int(round(opts.min_duration_s * model.sample_rate))
        )
        self.report = ExtractionReport(total=len(dataset), model=model.name)
        self._partial: dict[int, WindowAverage] = {}
        self._failed: set[int] = set()
        self._stamps: dict[int, str] = {}  # index -> its audio's stamp, taken as decoded
        self._restamped: list[LedgerRow] = []  # rows of kept vectors of copied audio
        self._kept: set[int] = set()  # items whose vectors are kept (`_profile_kept`)
        self.model_id = f"{model.name}:{model_digest(model)}"  # recorded in the ledger

    def run(
        self,
        errors_path: Path | None = None,
        progress: bool = True,
        speech_path: Path | None = None,
        profiles_path: Path | None = None,
    ) -> ExtractionReport:
        """Embed every item that lacks an embedding (all with `force`); write the error report,
        (with `speech_path`) the net speech duration of each embedded recording and (with
        `profiles_path`) its channel profile."""
        start = time.perf_counter()
        jobs = self._jobs()
        self.report.skipped = len(self.ds) - len(jobs) - len(self.report.failures)
        bar = tqdm(total=len(jobs), unit="file", disable=not progress, dynamic_ncols=True)
        self._speech_log = SpeechLog(speech_path) if speech_path is not None else None
        self._profile_log = None
        try:
            self._profile_log = ChannelProfileLog(profiles_path) if profiles_path else None
        except BaseException:
            self._close_logs()
            raise
        interrupted: Interrupted | None = None
        try:
            with self.ds.vector_writer("emb", self.save) as writer:
                self._writer, self._bar, self._start = writer, bar, start
                if writer.ledger is not None and self._restamped:
                    writer.ledger.add_rows(self._restamped)  # copied audio: its new times
                try:
                    self._consume(self._loader(jobs))
                    self._profile_kept(progress)
                except KeyboardInterrupt:
                    interrupted = Interrupted(self._interrupted_message(writer.location))
            # the writer is closed (a store merged) before the interrupt goes on
            if interrupted is not None:
                raise interrupted
        finally:
            bar.close()
            self._close_logs()
            self.report.speech_path = speech_path
            self.report.profiles_path = profiles_path
            self.report.wall_seconds = time.perf_counter() - start
            if errors_path is not None:
                write_error_report(errors_path, self.report.failures)
                self.report.errors_path = errors_path
        return self.report

    def _profile_kept(self, progress: bool) -> None:
        """The channel profiles of the items whose vectors are kept but that the profile log
        lacks (vectors extracted before balr wrote profiles, or a profile of another audio
        path): their audio is decoded by the same loader (windows, VAD), nothing is
        embedded. A file that cannot be decoded now is logged and left without a profile."""
        if self._profile_log is None or not self._kept:
            return
        have = self._profile_log.find(self._profile_log.path.parent) or {}  # every rank's
        todo = []
        for index in sorted(self._kept):
            audio = self.ds.items[index].audio
            path = Path(audio).absolute() if audio else None
            if (
                path is not None
                and path.is_file()
                and have.get(self.ds.items[index].id, ("",))[0] != str(path)
            ):
                todo.append((index, path))
        if not todo:
            return
        log.info("channel profiles of %d recordings whose vectors are kept", len(todo))
        partial: dict[int, WindowAverage] = {}
        bar = tqdm(total=len(todo), unit="file", disable=not progress, desc="profiles")
        for segment in self._loader(todo, stamp=False):
            if segment.error is not None:
                log.warning("%s: no channel profile (%s)", self.ds.items[segment.index].id,
                            segment.error)  # fmt: skip
                continue
            acc = partial.setdefault(segment.index, WindowAverage(segment.parts))
            samples = 0.0 if segment.wave is None else float(len(segment.wave))
            acc.add(None, samples, 0.0, segment.profile)
            if acc.complete:
                del partial[segment.index]
                bar.update()
                profile = acc.mean_profile()
                if profile is not None:
                    item = self.ds.items[segment.index]
                    with interrupt_deferred():
                        self._profile_log.add(item.id, str(Path(item.audio).absolute()), profile)
        bar.close()

    def _close_logs(self) -> None:
        """Close (and tidy) the per-recording logs that are open."""
        for log_file in (self._speech_log, self._profile_log):
            if log_file is not None:
                log_file.close()

    def _interrupted_message(self, location: str) -> str:
        """What Ctrl-C leaves behind and how to go on."""
        return (
            f"interrupted: {self.report.succeeded} embeddings saved by this run to {location} "
            f"({self.report.skipped} were there before); run the same command again to resume "
            "(existing embeddings are skipped unless --force)"
        )

    def _jobs(self) -> list[tuple[int, Path]]:
        done = set() if self.opts.force else self._valid_existing()
        self._kept = done
        jobs = []
        for i, item in enumerate(self.ds.items):
            if i in done:
                continue
            if item.audio is None:
                self.report.failures.append((item.id, "", "item has no audio file"))
                continue
            if not Path(item.audio).is_file():
                self._missing_audio(item)
                continue
            jobs.append((i, Path(item.audio)))
        return jobs

    def _valid_existing(self) -> set[int]:
        """Items whose saved embedding is valid (skipped); a bad one (NaN/inf, another shape
        than the others') is logged and extracted again."""
        bad: list[BadVector] = []
        done = set(self.ds.with_valid_vector("emb", bad).tolist())
        if bad:
            log.warning("extracting again %s", describe_bad(bad))
        other = [i for i in done if made_by_other(self.ds.vector_record(i, "emb"), self.model_id)]
        if other:
            log.warning(
                "extracting again %d embeddings made by another model than %s (first: %s)",
                *(len(other), self.model_id, self.ds.items[min(other)].id),
            )
        done -= set(other)
        self._restamped = self._restamped_rows(done)
        return done

    def _restamped_rows(self, done: set[int]) -> list[LedgerRow]:
        """Ledger rows with the new modification time of skipped items' audio files whose
        bytes are unchanged (a copied dataset), so that later reads need not hash them."""
        rows = self.ds.restamped_records("emb")
        ids = [self.ds.items[i].id for i in sorted(done)]
        found = [rows[item_id] for item_id in ids if item_id in rows]
        if found:
            log.info(
                "%d audio files have new modification times and the same bytes (first: %s): "
                "their embeddings are kept",
                *(len(found), found[0].source),
            )
        return found

    def _missing_audio(self, item) -> None:
        """Report an item whose listed audio path is missing or a folder, naming its id."""
        what = "is a directory" if Path(item.audio).is_dir() else "not found"
        reason = f"id '{item.id}' of {self.ds.source}: audio file {item.audio} {what}"
        self.report.failures.append((item.id, str(item.audio), reason))
        log.warning("skipped %s", reason)

    def _loader(
        self, jobs: list[tuple[int, Path]], stamp: bool | None = None
    ) -> torch.utils.data.DataLoader:
        """The decoded segments of `jobs` (hashed for the ledger when saving, unless `stamp`
        says otherwise; profiled when profiles are written)."""
        stream = DecodeStream(
            jobs,
            self.model.sample_rate,
            self.opts,
            self.min_samples,
            stamp=self.save if stamp is None else stamp,
            profiles=self._profile_log is not None,
        )
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
            if segment.stamp:
                self._stamps[segment.index] = segment.stamp
            if segment.error is not None:
                self._fail(segment.index, segment.error)
            elif segment.wave is None:
                self._finish(segment, None)
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
                self._finish(segment, vector)

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

    def _finish(self, segment: Segment, vector: np.ndarray | None) -> None:
        """Save a whole-item vector, or add a window to its recording's running average."""
        index = segment.index
        if index in self._failed:
            return
        samples = 0 if segment.wave is None else len(segment.wave)
        self.report.audio_seconds += samples / self.model.sample_rate
        if segment.parts == 1:
            if vector is not None:
                self._save(index, vector, segment.speech_s, segment.profile)
            return
        acc = self._partial.setdefault(index, WindowAverage(segment.parts))
        acc.add(vector, float(samples), segment.speech_s, segment.profile)
        if acc.complete:
            del self._partial[index]
            audio = self.ds.items[index].audio
            try:
                if self.opts.min_speech_s > 0:
                    require_speech(audio, acc.speech_s, self.opts.min_speech_s)
                if acc.total is None:
                    raise AudioError(f"{audio}: no usable audio in any window")
            except AudioError as exc:
                self._fail(index, str(exc))
                return
            self._save(index, acc.mean(self.model.normalized), acc.speech_s, acc.mean_profile())

    def _save(
        self, index: int, vector: np.ndarray, speech_s: float, profile: np.ndarray | None = None
    ) -> None:
        """Save the vector (and log its speech and channel profile) and count it, with Ctrl-C
        held in between: the count an interrupted run reports is the number of vectors it
        wrote."""
        item = self.ds.items[index]
        speech_s = round(speech_s, 3)
        with interrupt_deferred():
            if self._speech_log is not None:
                self._speech_log.add(item.id, str(item.audio or ""), speech_s)
            audio = str(Path(item.audio).absolute()) if item.audio else ""
            if self._profile_log is not None and profile is not None:
                self._profile_log.add(item.id, audio, profile)  # absolute: checked by score
            stamp = self._stamps.pop(index, "") or (file_stamp(audio) if audio else "")
            made = MadeFrom(audio, stamp, self.model_id)
            self._writer.put(index, vector.astype(np.float32), made)
            self.report.speech_seconds[item.id] = speech_s
            self.report.succeeded += 1
        self._tick()

    def _fail(self, index: int, reason: str) -> None:
        if index in self._failed:
            return
        self._failed.add(index)
        self._partial.pop(index, None)
        self._stamps.pop(index, None)
        self._writer.remove(index)  # an old vector of a now-unusable input is not kept
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
    speech_path: str | Path | None = None,
    save: bool = True,
    profiles_path: str | Path | None = None,
) -> ExtractionReport:
    """Embed a dataset's items that lack an embedding (computed, and not written unless
    `save`); see the module docstring."""
    errors = Path(errors_path) if errors_path is not None else None
    speech = Path(speech_path) if speech_path is not None else None
    profiles = Path(profiles_path) if profiles_path is not None else None
    extraction = EmbeddingExtraction(dataset, model, opts or ExtractionOptions(), save)
    return extraction.run(errors, progress, speech, profiles)


def _profile(wave: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """The channel profile of a decoded wave (None when it is too short for one frame)."""
    try:
        return channel_profile(wave, sample_rate)
    except DataError:
        return None


def _identity(segment: Segment) -> Segment:
    return segment


def _single_thread_worker(_: int) -> None:
    """Decoding workers use one torch thread each (the cores belong to the model) and
    ignore Ctrl-C: the main process stops them, which is prompt only when they are alive
    to hear it (an interrupted worker blocks on its full queue until it is killed)."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
