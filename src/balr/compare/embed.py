"""The recordings of a comparison embedded by the numpy GE2E (`balr.embeddings.ge2e_numpy`),
without torch: decoded as the batch engine decodes them (`balr.embeddings.segments`: the
whole file, or windows of a long one averaged), with the same one-line errors. Other models
go through the batch engine (`ComparisonPipeline.embed_with_speech`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from balr.embeddings.ge2e_numpy import NumpyGE2E
from balr.embeddings.segments import ExtractionOptions, Segment, WindowAverage, decode_segments
from balr.embeddings.vad import require_speech
from balr.errors import AudioError, BalrError


def embed_files(
    paths: Sequence[str | Path],
    model: NumpyGE2E,
    opts: ExtractionOptions,
    waves: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Embeddings `(n, 256)` float32 and net speech seconds (rounded to ms) of the files;
    AudioError naming the first file that cannot be embedded and why. `waves`, when given,
    receives each file's decoded audio (its usable windows joined, at the model's rate), so
    that the caller measures it without decoding it again."""
    opts.check()
    min_samples = max(model.min_samples, int(round(opts.min_duration_s * model.sample_rate)))
    decoded = [_segments(i, Path(path), model, opts, min_samples) for i, path in enumerate(paths)]
    usable = [s for segments in decoded for s in segments if s.wave is not None]
    try:
        embedded = model.embed([s.wave for s in usable])
    except Exception as exc:
        raise AudioError(f"model failed: {type(exc).__name__}: {exc}") from None
    vectors_of = {id(segment): vector for segment, vector in zip(usable, embedded, strict=True)}
    vectors, speech = [], []
    for path, segments in zip(paths, decoded, strict=True):
        parts = [vectors_of.get(id(s)) for s in segments]
        vector, speech_s = _file_vector(Path(path), segments, parts, model, opts)
        vectors.append(vector)
        speech.append(round(speech_s, 3))
    if waves is not None:  # every file has a usable segment here
        waves += [np.concatenate([s.wave for s in d if s.wave is not None]) for d in decoded]
    return np.stack(vectors).astype(np.float32), speech


def _segments(
    index: int, path: Path, model: NumpyGE2E, opts: ExtractionOptions, min_samples: int
) -> list[Segment]:
    """The decoded segments of one file; AudioError with the batch engine's reason."""
    try:
        return list(decode_segments(index, path, model.sample_rate, opts, min_samples))
    except BalrError as exc:
        raise AudioError(str(exc)) from None
    except Exception as exc:
        raise AudioError(f"{path}: {type(exc).__name__}: {exc}") from None


def _file_vector(
    path: Path,
    segments: list[Segment],
    vectors: list[np.ndarray | None],
    model: NumpyGE2E,
    opts: ExtractionOptions,
) -> tuple[np.ndarray, float]:
    """One file's vector: its only segment's, or the length-weighted mean of its windows'
    (renormalised), with its net speech seconds."""
    if len(segments) == 1 and segments[0].parts == 1:
        return vectors[0], segments[0].speech_s
    average = WindowAverage(segments[0].parts)
    for segment, vector in zip(segments, vectors, strict=True):
        samples = 0 if segment.wave is None else len(segment.wave)
        average.add(vector, float(samples), segment.speech_s)
    if opts.min_speech_s > 0:
        require_speech(path, average.speech_s, opts.min_speech_s)
    if average.total is None:
        raise AudioError(f"{path}: no usable audio in any window")
    return average.mean(model.normalized), average.speech_s
