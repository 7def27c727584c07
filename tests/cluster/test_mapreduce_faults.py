"""MapReduce under the faults the paper is about, over real processes: a mapper killed after
its maps finished (its output is gone with it, so the maps run again), and a coordinator
killed mid-job and started again on its job log.

Both use a word count whose reduce waits for a `release` file in the workers' directory (a
user application loaded by path), so the kill lands at a known point of the job instead of
racing it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from pathlib import Path

from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import mapreduce_pb2 as pb
from distlab.runtime.mapreduce.client import submit_job
from tests.cluster.test_mapreduce_lab import (
    INPUTS,
    MapReduceProcesses,
    output_lines,
    processes,  # noqa: F401  (the fixture, used by name)
    reference_lines,
)
from tests.support import wait_for

GATED_WC = '''\
"""Word count whose reduce holds until a `release` file exists in the working directory."""
import os
import time

from distlab.apps.mr.wc import combine, map  # noqa: F401
from distlab.apps.mr.wc import reduce as count


def reduce(key, values):
    deadline = time.monotonic() + 120
    while not os.path.exists("release") and time.monotonic() < deadline:
        time.sleep(0.05)
    return count(key, values)
'''


def gated_app(tmp_path: Path) -> Path:
    path = tmp_path / "gated_wc.py"
    path.write_text(GATED_WC)
    return path


def submit_gated(harness: MapReduceProcesses, app: Path, reduces: int) -> tuple[int, Path]:
    output = harness.root / "out"
    spec = pb.JobSpec(app=str(app), inputs=[str(p) for p in INPUTS], reduces=reduces,
                      output_dir=str(output))
    return int(asyncio.run(submit_job(harness.address, spec)).job_id), output


def maps_done(harness: MapReduceProcesses, job: int) -> pb.JobProgress | None:
    progress = harness.status(job)
    if progress is not None and progress.maps_done == progress.maps_total > 0:
        return progress
    return None


def test_maps_of_a_killed_worker_run_again_when_reducers_cannot_fetch(
    processes: MapReduceProcesses,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A long worker timeout: the dead mapper is found out by the reducers' failed fetches.
    metrics_port = free_loopback_ports(1)[0]
    processes.start_coordinator("--worker-timeout", "120", "--task-timeout", "3",
                                "--metrics", f"127.0.0.1:{metrics_port}")
    processes.start_worker("mapper")
    job, output = submit_gated(processes, gated_app(tmp_path), reduces=3)
    before = wait_for(lambda: maps_done(processes, job), timeout=60,
                      what="the lone worker to finish every map task")
    assert before.reduces_done == 0
    victim = processes.workers["mapper"]
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=10) == -signal.SIGKILL

    (processes.scratch / "release").write_text("go")
    for worker_id in ("r1", "r2"):
        processes.start_worker(worker_id)
    progress = processes.wait_finished(job, timeout=90)
    assert output_lines(output) == reference_lines("wc", tmp_path)
    # Every map output was on the dead worker: each map task ran a second time.
    assert progress.maps_reexecuted == progress.maps_total == len(INPUTS)
    assert progress.map_attempts >= 2 * len(INPUTS)
    scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                     timeout=5).read().decode()
    assert f'distlab_mr_tasks_total{{kind="map",state="lost"}} {len(INPUTS)}.0' in scraped
    assert 'distlab_mr_tasks_total{kind="reduce",state="fetch_failed"}' in scraped
    assert 'distlab_mr_tasks_total{kind="reduce",state="completed"} 3.0' in scraped


def test_a_restarted_coordinator_resumes_the_job_from_its_log(
    processes: MapReduceProcesses,  # noqa: F811
    tmp_path: Path,
) -> None:
    processes.start_coordinator("--exit-when-idle")
    for worker_id in ("1", "2"):
        processes.start_worker(worker_id)
    job, output = submit_gated(processes, gated_app(tmp_path), reduces=4)
    before = wait_for(lambda: maps_done(processes, job), timeout=60,
                      what="every map task to finish")
    assert before.state == pb.JOB_STATE_REDUCE
    first = processes.coordinator
    assert first is not None
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL

    second = processes.start_coordinator("--exit-when-idle")
    (processes.scratch / "release").write_text("go")
    # In exit-when-idle mode the coordinator exits once the job is done and every worker
    # has been told so; the outcome is then read from its durable job log.
    assert second.wait(timeout=90) == 0
    for worker in processes.workers.values():
        assert worker.wait(timeout=30) == 0
    assert output_lines(output) == reference_lines("wc", tmp_path)
    records = [json.loads(line.split(" ", 1)[1])
               for line in (tmp_path / "coordinator" / "jobs.log").read_text().splitlines()]
    kinds = [record["type"] for record in records]
    assert kinds.count("start") == 2
    assert kinds[-1] == "job_done"
    assert kinds.count("reduce_done") == 4
    # The map outputs recorded before the crash were still on the workers: no map re-ran.
    assert kinds.count("map_done") == len(INPUTS)
    assert "map_lost" not in kinds
    log = (tmp_path / "coordinator.log").read_text()
    assert "coordinator epoch 2 serving" in log
    assert f"{len(INPUTS) + 2} records recovered" in log
