"""Fixtures shared by the storage tests."""

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class FsyncCalls:
    """Every os.fsync call made while the fixture is active, split by what was synced."""

    files: list[int] = field(default_factory=list)
    directories: list[int] = field(default_factory=list)

    def reset(self) -> None:
        self.files.clear()
        self.directories.clear()


@pytest.fixture
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncCalls]:
    calls = FsyncCalls()
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            calls.directories.append(fd)
        else:
            calls.files.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    yield calls
