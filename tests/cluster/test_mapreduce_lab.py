"""The 6.5840 MapReduce lab's tests (test-mr.sh), ported to pytest, over real processes.

Coordinator and workers are `distlab mr coordinator` / `distlab mr worker` processes on
127.0.0.1; workers run in a scratch directory, where the lab's timing and counting
applications leave their marker files. Outputs are compared, as sorted lines, with the
sequential reference run on the same inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from distlab.apps.mr.loader import load_app
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import mapreduce_pb2 as pb
from distlab.runtime.mapreduce.client import job_status, submit_job
from distlab.runtime.mapreduce.sequential import run_sequential
from tests.support import distlab_command, run_distlab, run_on_terminal, wait_for

DATA = Path(__file__).resolve().parents[1] / "data" / "mapreduce"
INPUTS = sorted(DATA.glob("pg-*.txt"))
FINISHED = (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED)


class MapReduceProcesses:
    """A coordinator and workers as child processes; every one is killed on teardown."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.scratch = root / "scratch"
        self.scratch.mkdir(parents=True)
        self.port = free_loopback_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.worker_ports: dict[str, int] = {}
        self._all: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        with log:
            process = subprocess.Popen(
                distlab_command("mr", *args), cwd=self.scratch, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env=self.env,
            )
        self._all.append(process)
        return process

    def start_coordinator(self, *extra: str) -> subprocess.Popen[bytes]:
        self.coordinator = self._spawn(
            "coordinator", "coordinator", "--listen", self.address,
            "--data-dir", str(self.root / "coordinator"), *extra,
        )
        return self.coordinator

    def start_worker(self, worker_id: str, *extra: str) -> subprocess.Popen[bytes]:
        """Start (or restart, with the same id, port and work directory) a worker."""
        port = self.worker_ports.setdefault(worker_id, free_loopback_ports(1)[0])
        process = self._spawn(
            f"worker-{worker_id}", "worker", "--coordinator", self.address,
            "--listen", f"127.0.0.1:{port}", "--id", worker_id,
            "--work-dir", str(self.root / f"work-{worker_id}"), *extra,
        )
        self.workers[worker_id] = process
        return process

    def submit(self, app: str, reduces: int, inputs: list[Path] = INPUTS) -> int:
        spec = pb.JobSpec(app=app, inputs=[str(p) for p in inputs], reduces=reduces,
                          output_dir=str(self.output_dir(app)))
        reply = asyncio.run(submit_job(self.address, spec))
        return int(reply.job_id)

    def output_dir(self, app: str) -> Path:
        return self.root / f"out-{app.replace('/', '_').replace('.', '_')}"

    def status(self, job_id: int) -> pb.JobProgress | None:
        try:
            return asyncio.run(job_status(self.address, job_id))
        except Exception:
            return None  # the coordinator is restarting or gone; callers poll again

    def wait_finished(self, job_id: int, timeout: float) -> pb.JobProgress:
        def finished() -> pb.JobProgress | None:
            progress = self.status(job_id)
            return progress if progress is not None and progress.state in FINISHED else None

        progress = wait_for(finished, timeout, f"job {job_id} to finish (logs in {self.root})",
                            interval=0.2)
        assert progress.state == pb.JOB_STATE_DONE, progress.error
        return progress

    def kill_all(self) -> None:
        for process in self._all:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[MapReduceProcesses]:
    harness = MapReduceProcesses(tmp_path)
    try:
        yield harness
    finally:
        harness.kill_all()


def output_lines(output_dir: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(output_dir.glob("mr-out-*")):
        lines += path.read_text().splitlines()
    return sorted(lines)


def reference_lines(app: str, tmp_path: Path, inputs: list[Path] = INPUTS) -> list[str]:
    result = run_sequential(load_app(app), inputs, tmp_path / f"reference-{app}")
    return sorted(result.output.read_text().splitlines())


def test_wc_indexer_and_parallelism_on_one_coordinator(
    processes: MapReduceProcesses, tmp_path: Path
) -> None:
    """Four jobs, run in order of submission by one coordinator and two workers: wc and
    indexer equal the sequential reference; mtiming and rtiming see maps and reduces run in
    parallel on both workers."""
    processes.start_coordinator()
    for worker_id in ("1", "2"):
        processes.start_worker(worker_id)
    jobs = {app: processes.submit(app, reduces)
            for app, reduces in (("wc", 10), ("indexer", 10), ("mtiming", 10), ("rtiming", 10))}
    assert list(jobs.values()) == sorted(jobs.values())

    for app in ("wc", "indexer"):
        processes.wait_finished(jobs[app], timeout=60)
        assert output_lines(processes.output_dir(app)) == reference_lines(app, tmp_path), app
        assert len(list(processes.output_dir(app).glob("mr-out-*"))) == 10

    processes.wait_finished(jobs["mtiming"], timeout=60)
    timing = output_lines(processes.output_dir("mtiming"))
    assert len([line for line in timing if line.startswith("times-")]) == 2, timing
    assert any(line.startswith("parallel-") and " 2" in line for line in timing), (
        f"map workers did not run in parallel: {timing}")

    processes.wait_finished(jobs["rtiming"], timeout=60)
    parallel_reduces = [line for line in output_lines(processes.output_dir("rtiming"))
                        if line.split() == [line[0], "2"]]
    assert len(parallel_reduces) >= 2, "too few parallel reduces"


def test_each_map_task_runs_exactly_once_when_nothing_fails(
    processes: MapReduceProcesses,
) -> None:
    """jobcount: with no failures (and no backup copies) the map function is called once per
    input file, across four workers."""
    processes.start_coordinator("--no-backup-tasks")
    for worker_id in "1234":
        processes.start_worker(worker_id)
    job = processes.submit("jobcount", reduces=10)
    progress = processes.wait_finished(job, timeout=90)
    assert progress.map_attempts == len(INPUTS)
    assert output_lines(processes.output_dir("jobcount")) == [f"a {len(INPUTS)}"]


def test_no_process_exits_before_the_job_is_done(
    processes: MapReduceProcesses, tmp_path: Path
) -> None:
    """early_exit: when the first process (coordinator or worker) exits, the output is
    already complete; it does not change afterwards."""
    coordinator = processes.start_coordinator("--exit-when-idle")
    for worker_id in "123":
        processes.start_worker(worker_id)
    processes.submit("early_exit", reduces=10)
    everyone = [coordinator, *processes.workers.values()]
    wait_for(lambda: any(p.poll() is not None for p in everyone), timeout=90,
             what="the first process to exit", interval=0.05)
    initial = output_lines(processes.output_dir("early_exit"))
    for process in everyone:
        process.wait(timeout=30)
    assert [p.returncode for p in everyone] == [0] * len(everyone)
    final = output_lines(processes.output_dir("early_exit"))
    assert initial == final
    assert final == reference_lines("early_exit", tmp_path)


def test_crashing_workers_still_give_the_right_output(
    processes: MapReduceProcesses, tmp_path: Path
) -> None:
    """crash: map and reduce calls kill their worker or stall it at random; workers are
    started again as they die (the lab's restart loop), and the output equals nocrash's."""
    coordinator = processes.start_coordinator(
        "--exit-when-idle", "--task-timeout", "2", "--worker-timeout", "5",
        "--backup-after", "0.5",
    )
    worker_ids = ("1", "2", "3")
    for worker_id in worker_ids:
        processes.start_worker(worker_id)
    job = processes.submit("crash", reduces=10)
    restarts = 0
    deadline = time.monotonic() + 150
    while coordinator.poll() is None:
        assert time.monotonic() < deadline, f"crash job did not finish (logs in {tmp_path})"
        for worker_id in worker_ids:
            if processes.workers[worker_id].poll() not in (None, 0):
                processes.start_worker(worker_id)
                restarts += 1
        time.sleep(0.1)  # polling interval of the restart loop
    assert coordinator.returncode == 0
    final = processes.output_dir("crash")
    assert output_lines(final) == reference_lines("nocrash", tmp_path)
    log = (tmp_path / "coordinator.log").read_text()
    assert f"job {job} submitted" in log
    # The application does crash workers: a run without a single restart would test nothing.
    assert restarts > 0


def test_an_application_without_reduce_is_refused_at_submission(
    processes: MapReduceProcesses, tmp_path: Path
) -> None:
    module = tmp_path / "mapper_only.py"
    module.write_text("def map(filename, contents):\n    return [(filename, '1')]\n")
    processes.start_coordinator()
    wait_for(lambda: serving(processes.address), timeout=30, what="the coordinator to serve")
    result = run_distlab("mr", "submit", "--coordinator", processes.address, "--app",
                         str(module), "--input", str(INPUTS[0]), "--reduces", "2")
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "has no reduce() function" in lines[0]
    # The local runner refuses it before starting anything.
    result = run_distlab("mr", "run", "--app", str(module), "--input", str(INPUTS[0]))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"distlab: error: application {module} has no reduce() function"]


def serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_mr_run_and_seq_commands(tmp_path: Path) -> None:
    """The user's path: `distlab mr run` starts its processes, shows progress lines when
    stderr is not a terminal, prints where the output is, and matches `distlab mr seq`,
    each in its own default directory."""
    pattern = str(DATA / "pg-*.txt")
    run = subprocess.run(
        distlab_command("mr", "run", "--app", "wc", "--input", pattern, "--reduces", "3",
                        "--workers", "2", "--run-dir", str(tmp_path / "run")),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "mr-output"
    assert f"{out}/mr-out-*" in run.stdout
    progress = [line for line in run.stderr.splitlines() if line.startswith("job 1 ")]
    assert progress and progress[-1].startswith("job 1 done: map 8/8"), run.stderr
    assert "\x1b" not in run.stderr and "\r" not in run.stderr, "control characters off a tty"
    seq = subprocess.run(
        distlab_command("mr", "seq", "--app", "wc", "--input", pattern),
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert seq.returncode == 0, seq.stderr
    reference = tmp_path / "mr-seq-output"
    assert str(reference / "mr-out-0") in seq.stdout
    # `cat mr-output/mr-out-*` is the distributed run's output alone, each key once.
    assert sorted(path.name for path in out.iterdir()) == ["mr-out-0", "mr-out-1", "mr-out-2"]
    assert output_lines(out) == output_lines(reference)
    # Every child process it started is gone.
    for log in (tmp_path / "run").glob("*.log"):
        assert "stopped" in log.read_text(), log


def test_mr_run_on_a_terminal_draws_a_live_progress_bar(tmp_path: Path) -> None:
    status, written = run_on_terminal(
        distlab_command("mr", "run", "--app", "wc", "--input", str(DATA / "pg-*.txt"),
                        "--reduces", "3", "--workers", "2", "--run-dir", str(tmp_path / "run")),
        cwd=tmp_path)
    assert status == 0, written
    # rich's bar: its line drawn in box characters, redrawn in place, at 100% when done.
    assert "\u2501" in written and "\x1b[" in written and "\r" in written, written
    assert "100%" in written, written
    # The phase lines are printed above the bar, and the result after it.
    assert "job 1 done: map 8/8" in written
    assert f"{tmp_path / 'mr-output'}/mr-out-*" in written


def test_signals_stop_a_worker_cleanly(processes: MapReduceProcesses) -> None:
    processes.start_coordinator()
    worker = processes.start_worker("1")
    wait_for(lambda: "serving map output" in (processes.root / "worker-1.log").read_text(),
             timeout=30, what="the worker to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
