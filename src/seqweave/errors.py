"""The errors seqweave raises on bad input: each says what is wrong and where."""

from __future__ import annotations


class SeqweaveError(Exception):
    """Base class of every error seqweave raises on purpose."""


class DataError(SeqweaveError):
    """A data file is malformed. The message names the file and, where known, the line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class ConfigError(SeqweaveError):
    """A configuration value or key is invalid."""


class CheckpointError(SeqweaveError):
    """A model directory or checkpoint is missing, corrupt or unsafe to load."""
