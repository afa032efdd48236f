"""Crash-safe file writing (a temporary file beside the target, then rename), and checked
reading of a JSON model file."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from balr.errors import DataError, ModelError


def _umask_file_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file (0o666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _umask_file_mode()


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` on success.

    On any exception the temporary file is removed, so a half-written `target` never exists.
    `suffix` defaults to the target's own suffix (some writers pick the format from it).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=(target.suffix if suffix is None else suffix) + ".tmp",
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def interrupt_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C (SIGINT) until the block ends, then deliver it: a vector written and the
    count of what was written change together, so an interrupted job reports exactly what
    is on disk. Yields the list of signals held so far, so a loop inside the block can stop
    after its current item. Only the main thread receives signals; elsewhere the block runs
    as is (the list stays empty)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if previous is signal.default_int_handler:
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)  # whatever the previous handler does with it


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write `text` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def next_run_dir(base: str | os.PathLike, prefix: str = "train") -> Path:
    """Return `base/prefixN` with the smallest N >= 1 not yet used (e.g. runs/train3)."""
    base = Path(base)
    n = 1
    while (base / f"{prefix}{n}").exists():
        n += 1
    return base / f"{prefix}{n}"


def run_dir(save_dir: str | os.PathLike | None, default: str, exist_ok: bool = False) -> Path:
    """The folder of a `train` / `score` run, as the reference names it: `save_dir`
    (`default` when None, e.g. `runs/train`) if it does not exist yet or `exist_ok`;
    otherwise the first free `save_dir2`, `save_dir3`, ... (`runs/train2`)."""
    path = Path(save_dir if save_dir is not None else default)
    if exist_ok or not path.exists():
        return path
    n = 2
    while Path(f"{path}{n}").exists():
        n += 1
    return Path(f"{path}{n}")


def atomic_write_json(target: str | os.PathLike, data: object) -> None:
    """Write strict JSON atomically; non-finite floats become "inf", "-inf" or "nan"."""
    atomic_write_text(target, json.dumps(_finite_json(data), indent=2, allow_nan=False) + "\n")


def _finite_json(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(item) for item in value]
    return value


class WriterLock:
    """An exclusive lock on `path` (flock), held until `release()`: a second process that
    asks for it fails at once with a DataError naming `what`, instead of interleaving its
    writes. The lock dies with its process, so a crash never leaves a live lock, and the lock
    file is removed on release (while still locked): a process that opened the old file
    sees, once it holds the lock, that the path names another file (or none) and opens the
    path again, so removing it never lets two writers in."""

    def __init__(self, path: str | os.PathLike, what: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            self._handle = open(self.path, "a+")
            try:
                fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._refuse(what)
            if _same_file(self._handle, self.path):
                break
            self._handle.close()  # removed by its last holder meanwhile: take the new one
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"{os.getpid()}\n")
        self._handle.flush()

    def _refuse(self, what: str) -> None:
        self._handle.seek(0)
        holder = self._handle.read().strip() or "unknown"
        self._handle.close()
        raise DataError(
            f"{what}: another balr process (pid {holder}) is writing to it; wait for it "
            f"to finish or write elsewhere (lock file {self.path})"
        ) from None

    def release(self) -> None:
        """Remove the lock file, then unlock (idempotent)."""
        if not self._handle.closed:
            if _same_file(self._handle, self.path):
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def _same_file(handle, path: Path) -> bool:
    """Whether the open `handle` is the file `path` names now."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json_object(path: str | os.PathLike, what: str) -> dict:
    """The JSON object (mapping) in `path`; a one-line error naming the file otherwise
    (missing, unreadable, not JSON, not an object). `what` names the file in messages
    (e.g. "calibration file")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, binary junk
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ModelError(f"{path}: cannot read {what} ({reason})") from None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{path}: not a balr {what} (invalid JSON: {exc})") from None
    if not isinstance(record, dict):
        raise ModelError(f"{path}: not a balr {what} (a JSON {type(record).__name__})")
    return record


def save_fitted_tensors(
    target: str | os.PathLike, tensors: dict, file_format: str, metadata: dict[str, str]
) -> Path:
    """Write a small fitted estimator as safetensors (atomic): its arrays, and as metadata
    `format` plus `metadata` (strings)."""
    from safetensors.numpy import save_file

    path = Path(target)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": file_format, **metadata})
    return path


def read_fitted_tensors(
    source: str | os.PathLike, file_format: str, label: str
) -> tuple[dict, dict[str, str]]:
    """`(arrays, metadata)` of a file written by `save_fitted_tensors`; ModelError (one
    line naming the file) when it is unreadable or of another `format`. No code runs."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(source), "np") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(source))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{source}: not a readable {label} ({exc})") from None
    if metadata.get("format") != file_format:
        raise ModelError(f"{source}: field 'format' is not {file_format}")
    return tensors, metadata
