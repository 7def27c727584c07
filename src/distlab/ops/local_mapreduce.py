"""Workers as local child processes on loopback, and the coordinator they report to served by
the calling process: what `distlab mr run` starts.

As in the paper, where the user's program forks its workers and one copy becomes the master,
the command that runs the job is its coordinator: a gRPC server on loopback with its durable
job log, exactly the `distlab mr coordinator` process's (`serve_coordinator`), which spares a
small job the start-up of one more interpreter. Each worker logs to its own file in the run
directory and the coordinator to coordinator.log; every child is killed when the run ends,
however it ends.
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
from typing import TYPE_CHECKING

from distlab.ops.loopback import LOOPBACK, free_loopback_ports
from distlab.wire.addresses import Address

if TYPE_CHECKING:
    from distlab.runtime.mapreduce.coordinator import CoordinatorSettings

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

    @property
    def coordinator_log(self) -> Path:
        return self.run_dir / "coordinator.log"

    def coordinator_settings(self) -> CoordinatorSettings:
        """The coordinator this run serves (with `serve_coordinator`): on `address`, its job
        log in the run directory, telling the workers to exit once the job is over."""
        from distlab.protocols.mapreduce import SchedulerConfig
        from distlab.runtime.mapreduce.coordinator import CoordinatorSettings

        return CoordinatorSettings(
            listen=self.address,
            data_dir=self.run_dir / "coordinator",
            metrics=None,
            scheduler=SchedulerConfig(task_timeout=self.task_timeout, exit_when_idle=True),
            otlp_endpoint=self.otlp_endpoint,
        )

    def start(self) -> None:
        """Start the workers; they wait for the coordinator to serve."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {"OTLP_ENDPOINT": self.otlp_endpoint} if self.otlp_endpoint else {}
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
        """Start every process; however the block ends (SIGTERM included, which is handled as
        SIGINT is), stop them all."""
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.start()
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()


def _interrupt(signum: int, frame: object) -> None:
    # As SIGINT: KeyboardInterrupt, or, while an event loop runs, the cancellation of its main
    # task, which lets the coordinator served in it stop in order.
    signal.raise_signal(signal.SIGINT)
