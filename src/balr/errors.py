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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a job; the message says what was saved and how to resume.

    A KeyboardInterrupt, so callers that handle Ctrl-C still see one; the CLI prints the
    message as one line and exits with status 130.
    """
