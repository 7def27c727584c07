"""Fixtures shared by the storage tests."""

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class FsyncCalls:
    """Every os.fsync and os.fdatasync call made while the fixture is active, split by what
    was synced (a write-ahead log's syncs are fdatasyncs)."""

    files: list[int] = field(default_factory=list)
    directories: list[int] = field(default_factory=list)

    def reset(self) -> None:
        self.files.clear()
        self.directories.clear()


@pytest.fixture
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncCalls]:
    calls = FsyncCalls()

    def counting(real_sync: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                calls.directories.append(fd)
            else:
                calls.files.append(fd)
            real_sync(fd)
        return sync

    monkeypatch.setattr(os, "fsync", counting(os.fsync))
    monkeypatch.setattr(os, "fdatasync", counting(os.fdatasync))
    yield calls
