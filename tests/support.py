"""Helpers for tests that run real distlab processes: commands, polling, process state."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from distlab.client import TxnClient, TxnResult
from distlab.protocols.txn import parse_op

T = TypeVar("T")


def distlab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "distlab", *args]


def run_distlab(*args: str, env: dict[str, str] | None = None, timeout: float = 30.0
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        distlab_command(*args), capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_on_terminal(command: Sequence[str], *, cwd: Path | None = None, timeout: float = 120,
                    columns: int = 120) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as its stdin, stdout and stderr, as in a person's
    shell; (exit status, everything it wrote, decoded)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                               env=env, start_new_session=True)
    os.close(slave)
    written = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            written += chunk
        else:
            pytest.fail(f"{command[:4]} still running after {timeout:.0f} s")
        status = process.wait(timeout=30)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, written.decode(errors="replace")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Poll `condition` until it returns a truthy value; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


async def eventually(condition: Callable[[], bool], timeout: float, what: str,
                     interval: float = 0.01) -> None:
    """`wait_for` on the event loop: poll `condition` without blocking the loop's other tasks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def awaited(check: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                  interval: float = 0.1) -> T:
    """Await `check` until it returns something other than None, and return that; fail
    naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:g} s")
        await asyncio.sleep(interval)


async def first_transaction(client: TxnClient, puts: Sequence[str], timeout: float
                            ) -> TxnResult:
    """A test's first transaction over consensus groups (puts only), tried again while it
    aborts: on a cluster that has just started, a group may still be electing its leader, and
    its vote then misses the coordinator's deadline. A transaction of puts that aborted wrote
    nothing. Returns the last attempt's result."""
    deadline = time.monotonic() + timeout
    while True:
        result = await client.execute([parse_op(put) for put in puts], participants="groups",
                                      timeout=timeout)
        if result.outcome != "aborted" or time.monotonic() > deadline:
            return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes once its state says so.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class UpProcess:
    """`distlab up` running in the background, and the cluster.json it wrote."""

    def __init__(self, data_dir: Path, nodes: int | None,
                 extra_env: dict[str, str] | None = None, extra_args: Sequence[str] = ()):
        """`nodes` None starts the cluster `data_dir` holds again (no --nodes)."""
        self.data_dir = data_dir
        self.cluster_file = data_dir / "cluster.json"
        # Once every node serves, `distlab up` writes the file anew (a restart too: new pids).
        self._previous = self.cluster_file.read_text() if self.cluster_file.exists() else None
        size = [] if nodes is None else ["--nodes", str(nodes)]
        self.process = subprocess.Popen(
            distlab_command("up", *size, "--data-dir", str(data_dir), *extra_args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(extra_env or {})},
        )
        wait_for(self._ready, timeout=60, what="distlab up to write cluster.json")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            _, stderr = self.process.communicate()
            pytest.fail(f"distlab up exited with {self.process.returncode}: {stderr.strip()}")
        return self.cluster_file.exists() and self.cluster_file.read_text() != self._previous

    def description(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.cluster_file.read_text())
        return document

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def scrape_metrics(address: object) -> dict[str, float]:
    """A node's /metrics at `address` (host:port) as {sample name with labels: value}."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples
