"""One Jepsen-style run: a cluster, clients, a nemesis on a schedule, then the checker.

    healthy | fault | healthy | fault | ... | time limit | heal all | quiet | final reads

The history is written as the run goes; after the final reads the cluster (if the run
started it) is stopped, the history is checked against the kv model, and the report is
written next to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any, Protocol

from distlab.check import CheckResult, HistoryRecorder, Verdict, check, load_history
from distlab.check.tester.mix import Mix
from distlab.check.tester.report import HISTORY_FILE, FaultRecord, summarize_history, write_report
from distlab.check.tester.schedule import FaultSchedule, left_out
from distlab.core.ids import NodeId
from distlab.ops.faults import ComposeContainers, LocalProcesses, NodeControl
from distlab.ops.local_cluster import ClusterStartError, LocalCluster
from distlab.ops.tester.nemesis import ActiveFault, Nemesis
from distlab.ops.tester.workload import Clients, Workload
from distlab.wire.addresses import Address

# How often the counts are handed to the reporter (a bar redraws them; plain output prints a
# line at its own, slower pace).
PROGRESS_INTERVAL_SECONDS = 0.5
LEADER_WAIT_SECONDS = 30.0
CHECK_MEMORY_BYTES = 1024 * 2**20
STALE_READS_VARIABLE = "DISTLAB_UNSAFE_STALE_READS"
DIRTY_READS_VARIABLE = "DISTLAB_UNSAFE_DIRTY_READS"

EXIT_STATUS = {Verdict.LINEARIZABLE: 0, Verdict.NOT_LINEARIZABLE: 1, Verdict.UNKNOWN: 3}


@dataclass(frozen=True, slots=True)
class RunSettings:
    report_dir: Path
    time_limit: float
    rate: float
    concurrency: int
    keys: int
    mix: Mix
    faults: tuple[str, ...]
    nemesis_interval: float
    quiet: float
    operation_timeout: float
    check_timeout: float
    read_from_any: bool
    seed: int
    # Either a cluster to start (nodes, groups, data_dir) or one to use (addresses), which
    # with `compose` is a compose project whose containers the nemesis may kill and pause.
    nodes: int = 3
    groups: int = 1
    engine: str = "raft"
    data_dir: Path | None = None
    addresses: Mapping[NodeId, Address] | None = None
    compose: bool = False
    compose_project: str | None = None
    # The store under test: the KV store ("kv") or the chain ("chain", read at the tail or,
    # with read_mode "craq", at any replica).
    system: str = "kv"
    read_mode: str = "cr"

    def describe(self) -> dict[str, Any]:
        return {
            "cluster": ("started by the test" if self.addresses is None else
                        ",".join(f"{n}={a}" for n, a in sorted(self.addresses.items()))),
            "compose": self.compose,
            "nodes": self.nodes if self.addresses is None else len(self.addresses),
            "groups": self.groups if self.addresses is None else "the cluster's",
            "engine": self.engine if self.addresses is None else "the cluster's",
            "data_dir": None if self.data_dir is None else str(self.data_dir),
            "time_limit_seconds": self.time_limit,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "keys": self.keys,
            "mix": self.mix.describe(),
            "nemesis": ",".join(self.faults) or "none",
            "nemesis_interval_seconds": self.nemesis_interval,
            "quiet_seconds": self.quiet,
            "operation_timeout_seconds": self.operation_timeout,
            "check_timeout_seconds": self.check_timeout,
            "read_from_any": self.read_from_any,
            "seed": self.seed,
            "unsafe_stale_reads": os.environ.get(STALE_READS_VARIABLE, "") not in ("", "0"),
            "system": self.system,
            "read_mode": self.read_mode if self.system == "chain" else None,
            "unsafe_dirty_reads": os.environ.get(DIRTY_READS_VARIABLE, "") not in ("", "0"),
        }


@dataclass(frozen=True, slots=True)
class RunOutcome:
    verdict: Verdict
    exit_status: int
    report_dir: Path
    document: dict[str, Any]


class Reporter(Protocol):
    """Where a run tells how it is going (distlab.cli.progress.Progress is one): `log` for
    events (a fault, a heal, a phase), `update` for the workload's seconds so far and its
    counts."""

    def log(self, line: str) -> None: ...

    def update(self, completed: float | None = None, *, total: float | None = None,
               status: str | None = None) -> None: ...


def key_names(count: int) -> list[str]:
    return [f"k{index}" for index in range(count)]


async def run_test(settings: RunSettings, reporter: Reporter) -> RunOutcome:
    """The whole run; raises ClusterStartError when a cluster to start does not come up."""
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    history_path = settings.report_dir / HISTORY_FILE
    cluster: LocalCluster | None = None
    addresses = settings.addresses
    if addresses is None:
        data_dir = settings.data_dir or settings.report_dir / "cluster"
        cluster = LocalCluster.plan(settings.nodes, data_dir, groups=settings.groups,
                                    engine=settings.engine)
        reporter.log(f"starting {settings.nodes} nodes, {settings.groups} {settings.engine} "
                     f"group{'s' if settings.groups != 1 else ''} (data and logs in "
                     f"{data_dir})")
        await cluster.start()
        addresses = {node_id: node.address for node_id, node in cluster.nodes.items()}
    control: NodeControl | None = None
    if cluster is not None:
        control = LocalProcesses(cluster)
    elif settings.compose:
        control = ComposeContainers(settings.compose_project, addresses)
    try:
        run = _Run(settings, addresses, control, history_path, reporter)
        await run.execute()
    finally:
        if cluster is not None:
            reporter.log("stopping the cluster")
            await cluster.stop()
    return _check_and_report(settings, run, history_path, reporter)


async def run_until_interrupted(settings: RunSettings, reporter: Reporter
                                ) -> RunOutcome | str | None:
    """The run, or None when SIGINT/SIGTERM stopped it (after healing and stopping the
    cluster), or a message when no verdict could be reached."""
    task = asyncio.current_task()
    assert task is not None
    running = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(signum, task.cancel)
    try:
        return await run_test(settings, reporter)
    except asyncio.CancelledError:
        reporter.log("interrupted; faults healed and the cluster stopped")
        return None
    except ClusterStartError as error:
        return f"the cluster did not start: {error}"
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            running.remove_signal_handler(signum)


class _Run:
    """The live part of a run, and what it leaves for the report."""

    def __init__(self, settings: RunSettings, addresses: Mapping[NodeId, Address],
                 control: NodeControl | None, history_path: Path, reporter: Reporter) -> None:
        self.settings = settings
        self.reporter = reporter
        self.nemesis = Nemesis(addresses, Random(f"{settings.seed}/nemesis"), control)
        for fault in settings.faults:
            self.nemesis.check_supported(fault)
        self.history_path = history_path
        self.addresses = addresses
        self.faults: list[FaultRecord] = []
        self.not_run: tuple[str, ...] = ()
        self.current: ActiveFault | None = None
        self.origin_ns = time.monotonic_ns()
        self.finish_ns = self.origin_ns
        self.final_values: dict[str, str | None] = {}
        self.heal_errors: list[str] = []
        self.unexpected: list[str] = []

    async def execute(self) -> None:
        settings = self.settings
        leaders = await self.nemesis.wait_for_leader(LEADER_WAIT_SECONDS)
        self.reporter.log("leaders: " + ", ".join(f"group {group}: node {node}"
                                                  for group, node in sorted(leaders.items()))
                          if leaders is not None else
                          f"a group has no leader after {LEADER_WAIT_SECONDS:.0f} s; "
                          "starting anyway")
        schedule = FaultSchedule(settings.faults, settings.nemesis_interval,
                                 settings.time_limit)
        workload_rng = Random(f"{settings.seed}/workload")
        clients = Clients(self.addresses, settings.operation_timeout, settings.read_from_any,
                          workload_rng, settings.system, settings.read_mode)
        recorder = HistoryRecorder(self.history_path)
        workload = Workload(recorder, clients, settings.mix, key_names(settings.keys),
                            settings.rate, settings.concurrency, workload_rng)
        self.origin_ns = time.monotonic_ns()
        workers = asyncio.create_task(workload.run())
        counting = asyncio.create_task(self._report_progress(workload))
        try:
            healthy_since = 0.0
            while (planned := schedule.next_fault(healthy_since)) is not None:
                await self._sleep_until(planned.start, workers)
                self.current = await self.nemesis.start(planned.fault)
                self.reporter.log(f"fault: {self.current.description}")
                await self._sleep_until(planned.end, workers)
                record = await self.nemesis.heal(self.current)
                self.current = None
                self.faults.append(record)
                healthy_since = (record.end_ns - self.origin_ns) / 1e9
                self.reporter.log(f"healed: {record.description}"
                                  + (f" ({'; '.join(record.errors)})" if record.errors else ""))
            self.not_run = left_out(settings.faults, (record.fault for record in self.faults))
            if self.not_run:
                self.reporter.log(f"warning: no time was left for {', '.join(self.not_run)}")
            await self._sleep_until(settings.time_limit, workers)
            workload.stop()
            await workers
            self.heal_errors = await self.nemesis.heal_all()
            self.reporter.log(f"time limit reached after {workload.tally.total} operations; "
                              f"healed everything, quiet for {settings.quiet:g} s")
            await self.nemesis.wait_for_leader(LEADER_WAIT_SECONDS)
            await asyncio.sleep(settings.quiet)  # the quiet period is the point: no faults
            self.final_values = await workload.final_reads()
            self.reporter.log(f"final reads: {len(self.final_values)} of {settings.keys} keys")
        finally:
            self.finish_ns = time.monotonic_ns()
            counting.cancel()
            workload.stop()
            if not workers.done():
                workers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await workers
            if self.current is not None:
                self.faults.append(await self.nemesis.heal(self.current))
                self.current = None
            self.heal_errors += await self.nemesis.heal_all()
            self.unexpected = list(workload.unexpected) + clients.overruns()
            recorder.close()
            await clients.close()
            await self.nemesis.close()

    async def _sleep_until(self, seconds: float, workers: asyncio.Task[None]) -> None:
        """Until `seconds` after the start of the run; a worker crash ends the run."""
        delay = self.origin_ns / 1e9 + seconds - time.monotonic()
        if delay > 0:
            await asyncio.wait([workers], timeout=delay)
        if workers.done():
            workers.result()  # re-raises what stopped the workers
            raise RuntimeError("the clients stopped before the time limit")

    async def _report_progress(self, workload: Workload) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
            tally = workload.tally
            elapsed = (time.monotonic_ns() - self.origin_ns) / 1e9
            fault = self.current.description if self.current is not None else "none"
            self.reporter.update(min(elapsed, self.settings.time_limit), status=(
                f"{elapsed:6.1f} s: {tally.total} operations (ok {tally.ok}, fail {tally.fail}, "
                f"info {tally.info}); fault: {fault}"))


def _check_and_report(settings: RunSettings, run: _Run, history_path: Path,
                      reporter: Reporter) -> RunOutcome:
    reporter.log(f"checking {history_path} (budget {settings.check_timeout:g} s)")
    history = load_history(history_path, "jsonl")
    result: CheckResult = check(history, "kv", timeout=settings.check_timeout,
                                max_memory_bytes=CHECK_MEMORY_BYTES)
    summary = summarize_history(history_path.read_text(encoding="utf-8").splitlines())
    exit_status = EXIT_STATUS[result.verdict]
    document = write_report(
        settings.report_dir, result=result, summary=summary, faults=run.faults,
        origin_ns=run.origin_ns, finish_ns=run.finish_ns, settings=settings.describe(),
        exit_status=exit_status,
        extra={"faults_not_run": list(run.not_run), "final_reads": run.final_values,
               "heal_errors": run.heal_errors,
               "client_errors": run.unexpected[:50]})
    return RunOutcome(result.verdict, exit_status, settings.report_dir, document)


def format_summary(outcome: RunOutcome) -> str:
    """The one line a person (or a script) reads first."""
    document = outcome.document
    totals: Sequence[int] = [document["totals"][o] for o in ("ok", "fail", "info")]
    reason = document["checker"]["reason"]
    return (f"distlab test: {outcome.verdict.value}"
            + (f" ({reason})" if reason else "")
            + f": {document['operations']} operations (ok {totals[0]}, fail {totals[1]}, "
            f"info {totals[2]}), {_plural(len(document['faults']), 'fault')}, checked in "
            f"{document['checker']['elapsed_seconds']:g} s; report: "
            f"{outcome.report_dir / 'index.html'}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
