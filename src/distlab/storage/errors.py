"""Errors raised by the storage layer.

Every corruption error names the file it found wrong, so an operator can look at it before
anything is deleted: the storage layer never repairs data it cannot prove was unacknowledged.
"""

from pathlib import Path


class StorageError(Exception):
    """Base class for every error the storage layer raises."""


class CorruptLogError(StorageError):
    """A write-ahead log record that was once durable no longer reads back intact."""

    def __init__(self, path: Path, offset: int, problem: str) -> None:
        self.path = path
        self.offset = offset
        self.problem = problem
        super().__init__(f"corrupt write-ahead log {path} at byte offset {offset}: {problem}")


class CorruptStateError(StorageError):
    """The stable-state file (term, vote, commit index) does not parse or fails its checksum."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"corrupt stable state {path}: {problem}")


class CorruptSnapshotError(StorageError):
    """A committed snapshot file does not parse or fails its checksum."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"corrupt snapshot {path}: {problem}")


class LogCompactedError(StorageError):
    """The requested log index lies at or below the snapshot that replaced it."""


class LogUnavailableError(StorageError):
    """The requested log index lies beyond the last entry."""


class StorageClosedError(StorageError):
    """The store was used after `close()`, or after a failed write left it unusable."""
