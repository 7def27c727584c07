"""Spanner's transactions over groups in the simulator (DESIGN §17): `distlab sim spanner`.

The world of `sim txn --participants groups`, with timestamps on: each node's participants
take its TrueTime (from its virtual clock, skewed within its epsilon and drifting a little),
assign prepare and commit timestamps, and wait out commits; every replica keeps versions
(the bank's opening balances among them, at INITIAL_TS).

The clients record a transaction history on the true virtual time: transfers (read-write,
with their commit timestamps), read-only transactions of every account at TrueTime's latest
on the coordinating leader, snapshot reads of every account at a recent timestamp from a
random node's replicas, and back-to-back pairs: T1 a transfer within the group whose leader's
clock is fastest, T2, begun the moment T1 commits, coordinated by the group whose leader's
clock is slowest. Without commit wait T2 can take a timestamp below T1's; only such pairs
show it, since random traffic leaves more than the skews' spread between the two.

At the end of a run the history is checked for external consistency (`check_external`),
beside what every run over groups checks (atomicity, the bank's total); and a record any
replica's versions refuse (a timestamp that rewrites the past) fails the run when applied.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from random import Random
from typing import Any

from distlab.apps.mvcc import MVCCError
from distlab.check._external import Consistency, check_external
from distlab.check._txn_history import parse_txn_history
from distlab.core.ids import NodeId
from distlab.core.truetime import FixedEpsilon
from distlab.protocols.txn import TIMESTAMP_BUG_CATALOGUE, Op, OpKind, Outcome, Protocol
from distlab.runtime.host.driver import Timing
from distlab.runtime.txn.groups import GroupParticipants
from distlab.sim import harness
from distlab.sim.harness import RunPlan, RunResult, Tuning
from distlab.sim.paxos import draw_options as draw_paxos_options
from distlab.sim.raft import draw_options as draw_raft_options
from distlab.sim.txn import execute_groups
from distlab.sim.txn.groups import (
    CONSENSUS_TICK_SECONDS,
    ENGINES,
    INITIAL_TS,
    GroupBankWorkload,
    GroupTxnOptions,
    GroupTxnWorld,
)
from distlab.sim.txn.workload import BankSettings
from distlab.sim.world import NodeSettings, World

NAME = "spanner"
# Each node's TrueTime epsilon (ms), drawn per node; its wall clock starts off the true time
# by up to SKEW_SHARE of it, either way. The rest of the epsilon covers the drift: the
# drawn rate's error is scaled by DRIFT_SCALE (10 ppm at most, some 0.15 ms over a run).
EPSILONS_MS = (2.0, 4.0, 8.0, 16.0)
SKEW_SHARE = 0.75
DRIFT_SCALE = 1e-4
# Shares of the workers' transactions: read-only ones and snapshot reads (the rest are
# transfers), and of the pairs whose T2 is read-only (the rest transfer within one group).
READ_SHARE = 0.25
SNAPSHOT_SHARE = 0.2
PAIR_READ_SHARE = 0.75
# A pair runs alone: the workers begin nothing new and it waits (up to PAIR_DRAIN_SECONDS)
# for theirs in flight, since T2's begin waits behind whatever its leader's driver is making
# durable; then the workers have as long as the pair took.
PAIR_DRAIN_SECONDS = 0.25
# Snapshot reads are at one of the last timestamps transactions reported, answered within.
RECENT_TIMESTAMPS = 32
SNAPSHOT_READ_SECONDS = 0.5
# Fewer faults that stop a group for long or slow it down (lossy networks, slow disks) than
# over groups elsewhere, so that transactions commit and pairs run; no clock faults, which
# would take clocks past their epsilon (a TrueTime that lies is not the protocol's bug).
SHAPE = Tuning(
    weights={"crash": 2, "crash-leader": 2, "crash-new-leader": 1, "power-loss": 1,
             "power-loss-in-fsync": 1, "fail-fsync": 1, "corrupt": 0, "isolate-leader": 2,
             "partition": 3, "network": 1, "slow-disk": 1, "clock-rate": 0,
             "clock-jump": 0},
    networks=("reliable", "reordering", "duplicating"))


def node_clock(rng: Random, drawn: NodeSettings) -> NodeSettings:
    """A node's clock within its TrueTime's epsilon: skewed by up to SKEW_SHARE of it, and
    drifting by a tiny fraction of what other protocols' runs draw."""
    epsilon = rng.choice(EPSILONS_MS)
    skew = rng.uniform(-SKEW_SHARE, SKEW_SHARE) * epsilon
    return replace(drawn, clock_rate=1.0 + (drawn.clock_rate - 1.0) * DRIFT_SCALE,
                   wall_skew_ms=round(skew, 3), epsilon=FixedEpsilon(epsilon))


class SpannerWorkload(GroupBankWorkload):
    """The bank with timestamps, its transaction history kept for the external-consistency
    check (DESIGN §9's format, on the true virtual time)."""

    def __init__(self, world: GroupTxnWorld, rng: Random, settings: BankSettings,
                 protocol: Protocol, accounts: Sequence[str]) -> None:
        super().__init__(world, rng, settings, protocol, accounts)
        self.history: list[str] = []
        self.by_group: dict[int, list[str]] = {}
        for account in self.accounts:
            self.by_group.setdefault(world.group_of(account), []).append(account)
        self._recent: collections.deque[int] = collections.deque(maxlen=RECENT_TIMESTAMPS)
        self.pairs = 0
        self._workers_may_go = asyncio.Event()
        self._workers_may_go.set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ the clients

    async def run_clients(self, until: float) -> None:
        # The opening balances, committed at INITIAL_TS before anything else.
        opening = [["w", account, self.settings.balance] for account in self.accounts]
        process = next(self._processes)
        self._note(process, "invoke", opening)
        self._note(process, "ok", opening, ts=INITIAL_TS)
        clients = [self._worker(until) for _ in range(self.settings.clients)]
        await asyncio.gather(*clients, self._pair_client(until))
        self.blocked_at_heal = sum(1 for entry in self._in_doubt() if entry.role == "participant")

    async def _worker(self, until: float) -> None:
        world, rng = self.world, self.rng
        process = next(self._processes)
        while world.now < until:
            await asyncio.sleep(rng.uniform(*self.settings.think_ms) / 1000.0)
            await self._workers_may_go.wait()
            if world.now >= until:
                return
            draw = rng.random()
            self._in_flight += 1
            self._idle.clear()
            try:
                if draw < READ_SHARE:
                    outcome = await self._read_only(process, self._random_leader(),
                                                    rng.choice(self.accounts))
                elif draw < READ_SHARE + SNAPSHOT_SHARE:
                    outcome = await self._snapshot_read(process)
                else:
                    outcome = await self._transfer_ops(process, self._transfer(), None)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()
            if outcome == "info":
                process = next(self._processes)

    async def _pair_client(self, until: float) -> None:
        world, rng = self.world, self.rng
        process = next(self._processes)
        while world.now < until:
            started = world.now
            self._workers_may_go.clear()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), PAIR_DRAIN_SECONDS)
                outcome = await self._run_pair(process)
            finally:
                self._workers_may_go.set()
            if outcome == "info":
                process = next(self._processes)
            await asyncio.sleep(max(world.now - started,
                                    rng.uniform(*self.settings.think_ms) / 1000.0))

    async def _run_pair(self, process: int) -> str:
        fast, slow = self._exposing_groups()
        outcome = await self._transfer_ops(process, self._within(fast), self._leader(fast))
        if outcome != "ok":
            return outcome
        # At once: the moment T1's commit is reported is when T2 must see it.
        self.pairs += 1
        if self.rng.random() < PAIR_READ_SHARE:
            return await self._read_only(process, self._leader(slow),
                                         self.rng.choice(self.by_group[slow]))
        return await self._transfer_ops(process, self._within(slow), self._leader(slow))

    def _within(self, group: int) -> tuple[Op, ...]:
        source, target = self.rng.sample(self.by_group[group], 2)
        amount = str(self.rng.randint(1, 30))
        return (Op(OpKind.REQUIRE, source, amount), Op(OpKind.ADD, source, f"-{amount}"),
                Op(OpKind.ADD, target, amount))

    # ------------------------------------------------------------------ who leads, whose clock

    def _leader(self, group: int) -> NodeId | None:
        """The member where group `group`'s participant runs (the latest term's, if two)."""
        world = self.groups
        running = [(participants.driver(group) is not None, node)
                   for node, participants in sorted(world.txn_engine.participants.items())]
        leaders = [node for runs, node in running if runs]
        if not leaders:
            return None
        return max(leaders, key=lambda node: self._term(node, group))

    def _term(self, node: NodeId, group: int) -> int:
        driver = self.groups.driver(node, group)
        return driver.status().term if driver is not None else -1

    def _random_leader(self) -> NodeId | None:
        live = self.groups.live_nodes()
        return self.rng.choice(sorted(live)) if live else None

    def _exposing_groups(self) -> tuple[int, int]:
        """Two groups, the first led by the TrueTime whose `latest` is furthest ahead of the
        true time (its clock's error plus its epsilon) and the second by the one least
        ahead; any two when their leaders' are alike."""
        world = self.groups
        errors: list[tuple[int, int]] = []
        for group in sorted(self.by_group):
            leader = self._leader(group)
            if leader is not None:
                latest = world.nodes[leader].truetime.now().latest
                errors.append((latest - world.true_time_ns(), group))
        if len(errors) >= 2:
            errors.sort()
            (slow_error, slow), (fast_error, fast) = errors[0], errors[-1]
            if fast_error > slow_error:
                return fast, slow
        fast, slow = self.rng.sample(sorted(self.by_group), 2)
        return fast, slow

    # ------------------------------------------------------------------ transactions

    async def _transfer_ops(self, process: int, ops: tuple[Op, ...], at: NodeId | None
                            ) -> str:
        """A transfer, begun at `at` (else at a random live member), its commit timestamp
        recorded."""
        base = self.new_txn()
        priority = (int(self.world.now * 1e9), base)
        value: list[list[object]] = [["add", op.key, int(op.argument)]
                                     for op in ops if op.kind is OpKind.ADD]
        self._note(process, "invoke", value)

        def begin(txn: str) -> Awaitable[Outcome] | None:
            node = at if at is not None else self._random_leader()
            if node is None:
                return None
            return self._at_leader(node, lambda participants: participants.execute(
                txn, priority, ops, self.protocol))

        kind, outcome, error = await self._attempts(base, begin)
        return self._completed(process, kind, value, outcome, error)

    async def _read_only(self, process: int, at: NodeId | None, first: str) -> str:
        """A read-only transaction of every account, coordinated by `first`'s group, at
        TrueTime's latest there."""
        keys = (first, *(account for account in self.accounts if account != first))
        value: list[list[object]] = [["r", key, None] for key in keys]
        self._note(process, "invoke", value)
        base = self.new_txn()

        def begin(txn: str) -> Awaitable[Outcome] | None:
            node = at if at is not None else self._random_leader()
            if node is None:
                return None
            return self._at_leader(node, lambda participants: participants.execute_read(
                txn, keys, None))

        kind, outcome, error = await self._attempts(base, begin)
        if outcome is not None:
            reads = dict(outcome.reads)
            value = [["r", key, _number(reads.get(key))] for key in keys]
            self._check_total(f"read-only transaction {outcome.txn}", reads)
        return self._completed(process, kind, value, outcome, error)

    async def _snapshot_read(self, process: int) -> str:
        """A snapshot read of every account at a recent timestamp from a random live
        member's replicas."""
        live = sorted(self.groups.live_nodes())
        if not live or not self._recent:
            return "fail"
        participants: GroupParticipants | None = self.groups.txn_engine.participants.get(
            self.rng.choice(live))
        if participants is None:
            return "fail"
        ts = self.rng.choice(self._recent)
        keys = tuple(self.accounts)
        self._note(process, "invoke", [["r", key, None] for key in keys], at=ts)
        try:
            read = await asyncio.wait_for(
                participants.read_replicas(keys, ts, SNAPSHOT_READ_SECONDS),
                SNAPSHOT_READ_SECONDS * 2)
        except (MVCCError, TimeoutError) as error:
            self._note(process, "fail", [["r", key, None] for key in keys], error=str(error))
            return "fail"
        reads = dict(read)
        self._check_total(f"snapshot read at {ts}", reads)
        self._note(process, "ok", [["r", key, _number(reads.get(key))] for key in keys],
                   ts=ts)
        return "ok"

    def _completed(self, process: int, kind: str, value: list[list[object]],
                   outcome: Outcome | None, error: str | None) -> str:
        if outcome is None:
            self._note(process, kind, value, error=error)
            return kind
        if outcome.ts is None:
            self.world.fail(f"timestamps: transaction {outcome.txn} committed without one")
            return "fail"
        self._recent.append(outcome.ts)
        self._note(process, "ok", value, ts=outcome.ts)
        return "ok"

    def _check_total(self, what: str, reads: dict[str, str | None]) -> None:
        seen = sum(int(reads.get(account) or 0) for account in self.accounts)
        if seen != self.total:
            self.world.fail(f"bank: {what} saw a total of {seen}, not {self.total}: {reads}")

    def _note(self, process: int, kind: str, value: list[list[object]], *,
              ts: int | None = None, at: int | None = None, error: str | None = None) -> None:
        if kind in self.completed:
            self.completed[kind] += 1
        line: dict[str, object] = {"process": process, "type": kind, "f": "txn",
                                   "value": value, "time": self.groups.true_time_ns()}
        if ts is not None:
            line["ts"] = ts
        if at is not None:
            line["at"] = at
        if error is not None:
            line["error"] = error
        text = json.dumps(line)
        self.history.append(text)
        self.lines.append(text)

    # ------------------------------------------------------------------ after healing

    async def converge(self, timeout: float) -> str | None:
        problem = await super().converge(timeout)
        if problem is not None:
            return problem
        result = check_external(parse_txn_history("\n".join(self.history), "the clients"))
        violation = result.violation
        if result.verdict is Consistency.VIOLATED and violation is not None:
            return (f"not externally consistent ({violation.kind}, {self.pairs} pairs run): "
                    f"{violation.message}")
        return None


def _number(value: str | None) -> int | None:
    return None if value is None else int(value)


def _draw_options(rng: Random) -> GroupTxnOptions:
    bank = BankSettings(clients=rng.choice((3, 4)), accounts=rng.choice((6, 8)))
    return GroupTxnOptions(Protocol.TWO_PHASE, "all", bank,
                           engine=rng.choice(("raft", "raft", "paxos")),
                           raft=draw_raft_options(rng), paxos=draw_paxos_options(rng),
                           timestamps=True)


def _run_plan(plan: RunPlan, trace: bool, vclock_log: Callable[[str], object] | None
              ) -> tuple[RunResult, World]:
    return execute_groups(plan, trace, vclock_log, SpannerWorkload)


def _unused_engine(world: World, options: Any) -> Any:
    raise AssertionError("spanner runs build their own world")


harness.register(harness.ProtocolSpec(
    name=NAME,
    summary="2PC over consensus groups with TrueTime's timestamps, checked for external "
            "consistency",
    draw_options=_draw_options,
    plant=lambda options, bugs: replace(options, planted_bugs=bugs) if bugs else options,
    make_engine=_unused_engine,
    timing=lambda options: Timing(tick_seconds=CONSENSUS_TICK_SECONDS),
    bugs=TIMESTAMP_BUG_CATALOGUE, shape=SHAPE, run_plan=_run_plan, group_choices=(2, 3, 3),
    variants={"engine": (ENGINES, lambda options, value: replace(options, engine=value))},
    node_settings=node_clock))
