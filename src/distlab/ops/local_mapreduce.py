"""A coordinator and workers as local child processes on loopback: what `distlab mr run` starts.

Each process logs to its own file in the run directory; every child is killed when the run
ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from distlab.ops.loopback import LOOPBACK, free_loopback_ports
from distlab.wire.addresses import Address

STOP_TIMEOUT_SECONDS = 5.0


def distlab_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "distlab", *args]


@dataclass(slots=True)
class LocalProcess:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    @property
    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(slots=True)
class LocalMapReduce:
    run_dir: Path
    workers: int
    task_timeout: float
    otlp_endpoint: str | None = None
    address: Address = field(init=False)
    processes: list[LocalProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.address = Address(LOOPBACK, free_loopback_ports(1)[0])

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {"OTLP_ENDPOINT": self.otlp_endpoint} if self.otlp_endpoint else {}
        coordinator = LocalProcess(
            "coordinator",
            distlab_argv("mr", "coordinator", "--listen", str(self.address),
                         "--data-dir", str(self.run_dir / "coordinator"),
                         "--task-timeout", str(self.task_timeout), "--exit-when-idle"),
            self.run_dir / "coordinator.log",
        )
        coordinator.start(env)
        self.processes.append(coordinator)
        for index in range(1, self.workers + 1):
            worker = LocalProcess(
                f"worker-{index}",
                distlab_argv("mr", "worker", "--coordinator", str(self.address),
                             "--listen", f"{LOOPBACK}:0", "--id", str(index),
                             "--work-dir", str(self.run_dir / f"worker-{index}")),
                self.run_dir / f"worker-{index}.log",
            )
            worker.start(env)
            self.processes.append(worker)

    def failed_process(self) -> LocalProcess | None:
        """The coordinator if it exited with an error, else None."""
        coordinator = self.processes[0]
        status = coordinator.exit_status
        return coordinator if status not in (None, 0) else None

    def wait_for_exit(self, timeout: float) -> None:
        """Give every process `timeout` to exit on its own (they do once the work is over)."""
        deadline = time.monotonic() + timeout
        for process in self.processes:
            if process.process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.process.wait(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalMapReduce]:
        """Start every process; however the block ends (SIGTERM included, which is raised in
        it as KeyboardInterrupt, as SIGINT is), stop them all."""
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.start()
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
