"""One Jepsen-style run: a cluster, clients, a nemesis on a schedule, then the checker.

    healthy | fault | healthy | fault | ... | time limit | heal all | quiet | final reads

The history is written as the run goes; after the final reads the cluster (if the run
started it) is stopped, the history is checked (against the kv model; a transaction
workload's by the bank checker, and with timestamps by the external-consistency checker
too), and the report is written next to it.
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

from distlab.check import (
    BankVerdict,
    CheckResult,
    Consistency,
    ExternalResult,
    HistoryRecorder,
    Outage,
    Verdict,
    check,
    check_bank,
    check_external,
    load_history,
    read_txn_history,
)
from distlab.check.tester.bank_report import bank_counts, bank_document, write_bank_report
from distlab.check.tester.mix import Mix
from distlab.check.tester.report import HISTORY_FILE, FaultRecord, summarize_history, write_report
from distlab.check.tester.schedule import FaultSchedule, left_out
from distlab.core.ids import NodeId
from distlab.ops.faults import ComposeContainers, LocalProcesses, NodeControl
from distlab.ops.local_cluster import ClusterStartError, LocalCluster
from distlab.ops.tester.bank import BankError, BankWorkload, account_names
from distlab.ops.tester.external import ExternalWorkload
from distlab.ops.tester.nemesis import ActiveFault, Nemesis
from distlab.ops.tester.workload import Clients, Tally, Workload
from distlab.wire.addresses import Address

# How often the counts are handed to the reporter (a bar redraws them; plain output prints a
# line at its own, slower pace).
PROGRESS_INTERVAL_SECONDS = 0.5
LEADER_WAIT_SECONDS = 30.0
CHECK_MEMORY_BYTES = 1024 * 2**20
STALE_READS_VARIABLE = "DISTLAB_UNSAFE_STALE_READS"
DIRTY_READS_VARIABLE = "DISTLAB_UNSAFE_DIRTY_READS"
NO_COMMIT_WAIT_VARIABLE = "DISTLAB_UNSAFE_NO_COMMIT_WAIT"
BANK = "bank"
EXTERNAL = "external-consistency"

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
    # `kv` (checked for linearizability), `bank` (transfers in transactions, DESIGN §16) or
    # `external-consistency` (the bank over groups with Spanner's timestamps, DESIGN §17).
    workload: str = "kv"
    protocol: str = "2pc"
    participants: str = "nodes"
    # The bank's accounts; the external-consistency workload's in all, None for two a group.
    accounts: int | None = 5
    # The store under test: the KV store ("kv") or the chain ("chain", read at the tail or,
    # with read_mode "craq", at any replica).
    system: str = "kv"
    read_mode: str = "cr"
    # Offsets of the started nodes' clocks in ms, one per node in id order (CLOCK_SKEW_MS).
    clock_skews: tuple[float, ...] | None = None

    @property
    def transactions(self) -> bool:
        return self.workload in (BANK, EXTERNAL)

    def describe(self) -> dict[str, Any]:
        bank: dict[str, Any] = (
            {"workload": self.workload, "protocol": self.protocol,
             "participants": self.participants, "accounts": self.accounts}
            if self.transactions else {"workload": "kv"})
        if self.workload == EXTERNAL:
            bank["unsafe_no_commit_wait"] = _flag(NO_COMMIT_WAIT_VARIABLE)
        return {
            **bank,
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
            "unsafe_stale_reads": _flag(STALE_READS_VARIABLE),
            "system": self.system,
            "read_mode": self.read_mode if self.system == "chain" else None,
            "unsafe_dirty_reads": _flag(DIRTY_READS_VARIABLE),
            "clock_skews_ms": list(self.clock_skews) if self.clock_skews is not None else None,
        }

    def skews_by_node(self) -> dict[NodeId, float] | None:
        """The skews of the nodes of the cluster the run starts, by id (None without)."""
        if self.clock_skews is None or self.addresses is not None:
            return None
        return {NodeId(index + 1): skew for index, skew in enumerate(self.clock_skews)}


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "") not in ("", "0")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    verdict: Verdict | BankVerdict
    exit_status: int
    report_dir: Path
    document: dict[str, Any]


class RunningWorkload(Protocol):
    """What a run needs of its clients, whichever the workload."""

    tally: Tally
    unexpected: list[str]

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    async def final_reads(self) -> Mapping[str, object]: ...


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
        cluster.clock_skews = settings.skews_by_node() or {}
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
    except BankError as error:
        return f"the bank run could not start: {error}"
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
        self.final_values: dict[str, Any] = {}
        self.final_read_ok = False
        # The bank workload's: each node's unfinished transactions after the final read, and
        # the seconds since the final heal when they were asked for.
        self.unfinished: list[dict[str, Any]] = []
        self.since_heal_seconds: float | None = None
        self.status_ns = 0
        self.heal_errors: list[str] = []
        self.unexpected: list[str] = []
        # The crashes the nemesis healed, with what the other nodes held unfinished.
        self.outages: list[Outage] = []
        # The transaction workloads': the accounts, and the external-consistency pairs.
        self.accounts: list[str] = []
        self.pairs: dict[str, int] = {}

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
        recorder = HistoryRecorder(self.history_path)
        clients: Clients | None = None
        bank: BankWorkload | None = None
        workload: RunningWorkload
        if settings.workload == EXTERNAL:
            workload = bank = ExternalWorkload(
                recorder, self.addresses, settings.accounts, settings.rate,
                settings.concurrency, settings.operation_timeout, workload_rng,
                settings.skews_by_node())
        elif settings.workload == BANK:
            workload = bank = BankWorkload(
                recorder, self.addresses, account_names(settings.accounts or 0),
                settings.protocol, settings.rate, settings.concurrency,
                settings.operation_timeout, workload_rng, settings.participants,
                settings.groups)
        else:
            clients = Clients(self.addresses, settings.operation_timeout,
                              settings.read_from_any, workload_rng, settings.system,
                              settings.read_mode)
            workload = Workload(recorder, clients, settings.mix, key_names(settings.keys),
                                settings.rate, settings.concurrency, workload_rng)
        try:
            if bank is not None:
                await bank.open_accounts()
                self.accounts = bank.accounts
                self.reporter.log(f"opened {len(self.accounts)} accounts")
        except BaseException:
            recorder.close()
            if bank is not None:
                await bank.close()
            raise
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
            healed_at = time.monotonic()
            self.reporter.log(f"time limit reached after {workload.tally.total} operations; "
                              f"healed everything, quiet for {settings.quiet:g} s")
            await self.nemesis.wait_for_leader(LEADER_WAIT_SECONDS)
            await asyncio.sleep(settings.quiet)  # the quiet period is the point: no faults
            self.final_values = dict(await workload.final_reads())
            if bank is not None:
                self.final_read_ok = bool(self.final_values)
                self.reporter.log("final read of every account: " + (
                    "committed" if self.final_read_ok else "none committed"))
                self.unfinished, errors = await bank.unfinished()
                self.status_ns = time.monotonic_ns()
                self.since_heal_seconds = self.status_ns / 1e9 - healed_at
                self.heal_errors += [f"txn status after the heal: {e}" for e in errors]
            else:
                self.reporter.log(f"final reads: {len(self.final_values)} of {settings.keys} "
                                  "keys")
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
            self.unexpected = list(workload.unexpected) + (
                clients.overruns() if clients is not None else [])
            recorder.close()
            if clients is not None:
                await clients.close()
            if bank is not None:
                await bank.close()
            self.outages = list(self.nemesis.outages)
            if isinstance(bank, ExternalWorkload):
                self.pairs = dict(bank.pairs)
            await self.nemesis.close()

    async def _sleep_until(self, seconds: float, workers: asyncio.Task[None]) -> None:
        """Until `seconds` after the start of the run; a worker crash ends the run."""
        delay = self.origin_ns / 1e9 + seconds - time.monotonic()
        if delay > 0:
            await asyncio.wait([workers], timeout=delay)
        if workers.done():
            workers.result()  # re-raises what stopped the workers
            raise RuntimeError("the clients stopped before the time limit")

    async def _report_progress(self, workload: RunningWorkload) -> None:
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
    if settings.transactions:
        return _check_bank_and_report(settings, run, history_path, reporter)
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


def _check_bank_and_report(settings: RunSettings, run: _Run, history_path: Path,
                           reporter: Reporter) -> RunOutcome:
    """The bank checker; and for the external-consistency workload, whose history has
    timestamps, the external-consistency checker too: a violation of either is one."""
    timestamps = settings.workload == EXTERNAL
    reporter.log(f"checking the {settings.workload} history {history_path}")
    started = time.monotonic()
    history = read_txn_history(history_path, timestamps=timestamps)
    bank = check_bank(history, run.accounts,
                      run.final_values if run.final_read_ok else None, run.unfinished,
                      run.since_heal_seconds, run.outages)
    external: ExternalResult | None = None
    if timestamps:
        external = check_external(history, timeout=settings.check_timeout)
    elapsed = time.monotonic() - started
    if (bank.violations and settings.protocol == "3pc"
            and any(record.kind in ("partition", "txn-partition") for record in run.faults)):
        bank.notes.append(
            "3PC is not safe when the network partitions: each side of a partition runs the "
            "termination protocol on its own, and a side that saw PRE-COMMIT commits while "
            "one that did not aborts (Skeen's protocol assumes crashes, never partitions); "
            "2PC blocks instead, and 2PC over consensus groups neither blocks nor disagrees")
    verdict = bank.verdict
    if external is not None and external.verdict is Consistency.VIOLATED:
        verdict = BankVerdict.INVALID
    elif external is not None and external.verdict is Consistency.UNKNOWN \
            and verdict is BankVerdict.VALID:
        verdict = BankVerdict.UNKNOWN
    exit_status = {BankVerdict.VALID: 0, BankVerdict.INVALID: 1, BankVerdict.UNKNOWN: 3}[verdict]
    lines = history_path.read_text(encoding="utf-8").splitlines()
    summary = summarize_history(lines)
    extra: dict[str, Any] = {
        "faults_not_run": list(run.not_run), "final_reads": run.final_values,
        "heal_errors": run.heal_errors, "client_errors": run.unexpected[:50]}
    if timestamps:
        extra["pairs"] = run.pairs
    document = bank_document(
        bank=bank, summary=summary, counts=bank_counts(lines), faults=run.faults,
        origin_ns=run.origin_ns, finish_ns=run.finish_ns, settings=settings.describe(),
        exit_status=exit_status, elapsed=elapsed, verdict=verdict, external=external,
        extra=extra)
    blocked_intervals = [(seen - int(b.age_seconds * 1e9), seen, b.describe())
                         for b in bank.blocked
                         for seen in [b.observed_ns or run.status_ns]]
    write_bank_report(settings.report_dir, document, summary, run.faults, blocked_intervals)
    for line in bank.violations:
        reporter.log(f"violation: {line}")
    for violation in external.violations if external is not None else ():
        reporter.log(f"violation ({violation.kind}): {violation.message}")
    if external is not None and external.reason:
        reporter.log(f"note: the external-consistency check {external.reason}")
    for blocked in bank.blocked:
        reporter.log(f"blocked: {blocked.describe()}")
    for note in bank.notes:
        reporter.log(f"note: {note}")
    return RunOutcome(verdict, exit_status, settings.report_dir, document)


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
