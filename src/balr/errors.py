"""Exceptions that the CLI turns into one-line messages (no traceback)."""


class BalrError(Exception):
    """Base class: a user-facing error whose message names the file/id and the problem."""


class AudioError(BalrError):
    """An audio file cannot be read, is empty, or is too short."""


class DataError(BalrError):
    """A dataset, vector file or CSV is malformed or inconsistent."""


class TrialsError(DataError):
    """A trials list references unknown ids or mixes speakers in one cell."""


class ConfigError(BalrError):
    """A configuration or override is invalid."""


class ModelError(BalrError):
    """A model or checkpoint cannot be loaded, or a model is used before fitting."""


#: lines of torch's weights-only error that advise an unsafe retry or point elsewhere
_ADVICE_MARKERS = ("weights_only", "torch.load", "file an issue", "trusted source")


def load_failure_reason(exc: BaseException) -> str:
    """Why a model file could not be read, in one line, for a message naming the file.
    torch's advice to retry with `weights_only=False` (which could run code from the file)
    is never repeated; a refused Python object is reported as such."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not any(m in line for m in _ADVICE_MARKERS)]
    detail = (useful[0] if useful else type(exc).__name__)[:200]
    if "GLOBAL" in detail:
        return f"refused: it holds Python objects other than tensors, not loaded ({detail})"
    if len(useful) < len(lines) or "Unpickl" in type(exc).__name__:
        return f"not a file of tensors ({detail})"
    return detail


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a job; the message says what was saved and how to resume.

    A KeyboardInterrupt, so callers that handle Ctrl-C still see one; the CLI prints the
    message as one line and exits with status 130.
    """
