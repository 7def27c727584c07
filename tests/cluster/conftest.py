"""Fixtures for tests that run real distlab processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import UpProcess, pid_alive


@pytest.fixture
def up_three(tmp_path: Path) -> Iterator[UpProcess]:
    up = UpProcess(tmp_path / "cluster", nodes=3)
    try:
        yield up
    finally:
        up.stop()
        for node in up.description()["nodes"]:
            if pid_alive(node["pid"]):
                os.kill(node["pid"], signal.SIGKILL)
