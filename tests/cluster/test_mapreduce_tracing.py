"""One MapReduce job is one trace: the coordinator's job span, the workers' task spans under
it, and each fetch between workers as a client span on the reducer and a server span on the
mapper."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from distlab.telemetry.receiver import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    OtlpReceiver,
    ReceivedSpan,
)
from tests.cluster.test_mapreduce_lab import DATA, MapReduceProcesses
from tests.support import distlab_command, wait_for

FETCH = "/distlab.v1.Worker/FetchPartition"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


def test_a_job_is_one_trace_across_coordinator_and_workers(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    harness = MapReduceProcesses(tmp_path, env={"OTLP_ENDPOINT": receiver.endpoint})
    try:
        coordinator = harness.start_coordinator("--exit-when-idle")
        for worker_id in ("1", "2"):
            harness.start_worker(worker_id)
        for worker_id in ("1", "2"):
            log = tmp_path / f"worker-{worker_id}.log"
            wait_for(lambda log=log: log.exists() and "serving map output" in log.read_text(),
                     timeout=30, what=f"worker {worker_id} to start")
        harness.submit("wc", reduces=2)
        # Exiting flushes every buffered span.
        assert coordinator.wait(timeout=90) == 0
        for worker in harness.workers.values():
            assert worker.wait(timeout=30) == 0
    finally:
        harness.kill_all()

    assert_one_trace(receiver)


def test_mr_run_traces_its_job_as_one_trace(tmp_path: Path, receiver: OtlpReceiver) -> None:
    """`distlab mr run` serves the coordinator itself: its job span, the workers' task spans
    and their fetches still make one trace."""
    result = subprocess.run(
        distlab_command("mr", "run", "--app", "wc", "--input", str(DATA / "pg-*.txt"),
                        "--reduces", "2", "--workers", "2", "--output", str(tmp_path / "out"),
                        "--run-dir", str(tmp_path / "run"), "--otlp-endpoint",
                        receiver.endpoint, "--json"),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert_one_trace(receiver)


def assert_one_trace(receiver: OtlpReceiver) -> None:
    def job_spans() -> list[ReceivedSpan] | None:
        spans = receiver.spans
        names = {span.name for span in spans}
        return spans if {"mr.job", "mr.map", "mr.reduce", "mr.fetch"} <= names else None

    spans = wait_for(job_spans, timeout=15, what="the job's spans")
    jobs = [s for s in spans if s.name == "mr.job"]
    assert len(jobs) == 1 and jobs[0].service == "mr-coordinator"
    job = jobs[0]
    tasks = [s for s in spans if s.name in ("mr.map", "mr.reduce")]
    assert {s.service for s in tasks} == {"mr-worker-1", "mr-worker-2"}
    assert len([s for s in tasks if s.name == "mr.reduce"]) >= 2
    assert len([s for s in tasks if s.name == "mr.map"]) >= 8
    for task in tasks:
        assert task.trace_id == job.trace_id
        assert task.parent_span_id == job.span_id
    by_id = {span.span_id: span for span in spans}
    served = [s for s in spans if s.name == FETCH and s.kind == SPAN_KIND_SERVER]
    assert served, "no fetch between workers"
    for server_span in served:
        client_span = by_id[server_span.parent_span_id]
        assert client_span.kind == SPAN_KIND_CLIENT and client_span.name == FETCH
        assert client_span.service != server_span.service
        fetch = by_id[client_span.parent_span_id]
        assert fetch.name == "mr.fetch"
        assert by_id[fetch.parent_span_id].name == "mr.reduce"
        assert server_span.trace_id == job.trace_id
    # Polling (RequestTask, Heartbeat) and health checks are kept out of the traces.
    assert not [s for s in spans if "RequestTask" in s.name or "Heartbeat" in s.name]
