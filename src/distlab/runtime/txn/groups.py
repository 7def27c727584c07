"""Consensus groups as transaction participants (DESIGN §16, `--participants groups`).

Each group is one participant, and the coordinator of the transactions it is asked to run:
participant `g + 1` is group `g`. The transaction core of a group runs on the member that
leads it, in a `TxnDriver` like a node's, with two ports changed: its Storage proposes each
Ready's records to the group (one entry, the records of `apps/txn_log.py`) and returns once
they are applied, so a yes vote or a COMMIT leaves only when a majority of the group has the
record; and its Transport sends a message for participant `h + 1` to whichever member leads
group `h`. When leadership moves, the new leader confirms it (a read barrier, which also
applies everything committed before) and rebuilds the core from the records every replica
applied: locks, votes and decisions survive any single crash, so nothing blocks.

A leader that lost its group without noticing may still run its core for a while: whatever
it would make durable fails to commit, so it can vote no or abort (always safe before a
commit), never vote yes or commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import context as otel_context

from distlab.apps.mvcc import MVCCStore, ReadNotSafe
from distlab.apps.txn_log import TxnLogMachine, encode_records
from distlab.core.ids import NodeId
from distlab.core.replicated_log import EngineError, NotLeader
from distlab.core.status import EngineStatus
from distlab.core.truetime import TrueTime
from distlab.protocols.txn import (
    InDoubt,
    Message,
    Op,
    Outcome,
    PlantedBugs,
    TxnConfig,
    TxnNode,
    TxnReady,
)
from distlab.protocols.txn import Protocol as TxnProtocol
from distlab.runtime.host.machine import txn_records_command
from distlab.runtime.host.ports import Clock, sleep
from distlab.runtime.txn.driver import DEFAULT_TICK_SECONDS, TXN_FAULTS, TxnDriver
from distlab.wire.sharding import group_of

log = logging.getLogger(__name__)

# The envelopes' service on the peer transport; their group is the recipient's group.
SERVICE = "txng"
# How often each member looks at which groups it leads.
WATCH_SECONDS = 0.05
# How often a group's leader promises a safe time when nothing else has (so that replicas
# answer snapshot reads at recent timestamps without waiting for a write).
SAFE_TIME_SECONDS = 1.0
# How often a snapshot read at a replica looks again at its safe time.
REPLICA_READ_POLL_SECONDS = 0.005
STATUS_SECONDS = 1.0


def participant_id(group: int) -> NodeId:
    return NodeId(group + 1)


def group_of_participant(participant: NodeId) -> int:
    return int(participant) - 1


class LedGroup(Protocol):
    """What a group's participant needs of the group: its driver's calls."""

    def status(self) -> EngineStatus: ...

    async def read_barrier(self) -> None: ...

    async def propose_envelope(self, envelope: bytes) -> bytes: ...

    def not_leader(self) -> NotLeader: ...


# Sends a message to a member, for the instance of group `group` there.
SendToMember = Callable[[NodeId, int, Message, otel_context.Context | None], None]


class ShardData(Protocol):
    """A group's shard as its participant reads it (the KV store's state machine)."""

    def get(self, key: bytes) -> bytes | None: ...


class ShardView:
    """A participant's data: its group's KV shard and versions, and over them the writes of
    the commits decided here whose records are not applied yet (a transaction evaluated, or
    a snapshot read answered, in between must see them). Settled once the Ready that carried
    those records is applied."""

    def __init__(self, shard: ShardData, versions: MVCCStore) -> None:
        self._shard = shard
        self._versions = versions
        self._pending: dict[str, str] = {}
        self._pending_versions: dict[str, list[tuple[int, str]]] = {}

    def get(self, key: str, /) -> str | None:
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        value = self._shard.get(key.encode())
        return None if value is None else value.decode(errors="replace")

    def update(self, writes: Iterable[tuple[str, str]], /) -> None:
        self._pending.update(writes)

    def read_at(self, key: str, ts: int, /) -> str | None:
        """The newest version at or below `ts`; the group's leader, which made the promises
        that make `ts` safe, reads past the replicas' safe time."""
        pending = [value for at, value in self._pending_versions.get(key, ()) if at <= ts]
        if pending:
            return pending[-1]
        value = self._versions.value_at(key.encode(), ts)
        return None if value is None else value.decode(errors="replace")

    def commit_at(self, writes: Iterable[tuple[str, str]], ts: int, /) -> None:
        for key, value in writes:
            self._pending_versions.setdefault(key, []).append((ts, value))

    def settle(self) -> None:
        self._pending.clear()
        self._pending_versions.clear()


class GroupRecords:
    """The Storage port of a group's participant: a Ready's records become one entry of
    the group's log; `persist` returns once it is applied here (so on a majority's disks)."""

    def __init__(self, group: LedGroup, view: ShardView) -> None:
        self._group = group
        self._view = view

    async def persist(self, ready: TxnReady) -> None:
        if ready.records:
            await self._group.propose_envelope(
                txn_records_command(encode_records(ready.records)))
        self._view.settle()

    def save_snapshot(self, snapshot: Any) -> None:
        raise ValueError("a group's transaction records are in the group's snapshots")

    def close(self) -> None:
        pass  # the group's log is the group's


class ParticipantTransport:
    """The Transport port of a group's participant: to the leader of the recipient's group."""

    def __init__(self, node_id: NodeId, groups: Sequence[LedGroup], send: SendToMember,
                 deliver_here: Callable[[int, Message], bool]) -> None:
        self._node_id = node_id
        self._groups = groups
        self._send = send
        self._deliver_here = deliver_here

    def send(self, message: Message, trace_context: otel_context.Context | None = None
             ) -> None:
        group = group_of_participant(message.recipient)
        if not 0 <= group < len(self._groups):
            log.error("a transaction message for participant %d, beyond the %d groups",
                      message.recipient, len(self._groups))
            return
        leader = self._groups[group].status().leader_id
        if not leader:
            return  # no leader known: the sender's timers send it again
        if leader == self._node_id:
            self._deliver_here(group, message)
        else:
            self._send(leader, group, message, trace_context)


@dataclass(slots=True)
class _Participant:
    group: int
    driver: TxnDriver | None = None
    taking_over: asyncio.Task[None] | None = None


class GroupParticipants:
    """Every group's participant on this member: running where this member leads."""

    def __init__(self, *, node_id: NodeId, groups: Sequence[LedGroup],
                 shards: Sequence[ShardData], records: Sequence[TxnLogMachine],
                 send: SendToMember, clock: Clock,
                 tick_seconds: float = DEFAULT_TICK_SECONDS,
                 watch_seconds: float = WATCH_SECONDS,
                 config: Callable[[NodeId], TxnConfig] | None = None,
                 crash: Callable[[str], None] | None = None,
                 truetime: TrueTime | None = None,
                 planted_bugs: PlantedBugs | None = None,
                 safe_time_seconds: float = SAFE_TIME_SECONDS,
                 on_ready: Callable[[int, TxnNode, TxnReady], None] | None = None) -> None:
        assert len(groups) == len(shards) == len(records)
        self.node_id = node_id
        self._groups = tuple(groups)
        self._shards = tuple(shards)
        self._records = tuple(records)
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._watch_seconds = watch_seconds
        self._config = config or self._default_config
        self._truetime = truetime
        self._planted_bugs = planted_bugs or PlantedBugs()
        self._safe_time_seconds = safe_time_seconds
        self._safe_time_promised: dict[int, float] = {}
        self._transport = ParticipantTransport(node_id, self._groups, send, self.deliver)
        self._participants = [_Participant(group) for group in range(len(self._groups))]
        self._watching = False
        self._timer: Any = None
        self._background: set[asyncio.Task[None]] = set()
        # Armed transaction faults (the driver's TXN_FAULTS): every participant that runs
        # here has them, those that start later too.
        self.faults: frozenset[str] = frozenset()
        self._crash = crash
        # Sees each group's core after every Ready it handled (the simulator's invariants).
        self._on_ready = on_ready

    def _default_config(self, participant: NodeId) -> TxnConfig:
        groups = len(self._groups)
        return TxnConfig(node_id=participant, timestamps=self._truetime is not None,
                         owner=lambda key: participant_id(group_of(key, groups)),
                         planted_bugs=self._planted_bugs)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._watching = True
        self._watch()

    async def stop(self) -> None:
        self._watching = False
        if self._timer is not None:
            self._timer.cancel()
        await asyncio.gather(*(self._step_down(participant)
                               for participant in self._participants))

    def _watch(self) -> None:
        if not self._watching:
            return
        for participant in self._participants:
            leads = self._groups[participant.group].status().role == "leader"
            if leads and participant.driver is None and participant.taking_over is None:
                participant.taking_over = asyncio.create_task(
                    self._take_over(participant),
                    name=f"txn-group-{participant.group}-take-over")
            elif not leads and participant.driver is not None:
                self._spawn(self._step_down(participant))
            elif participant.driver is not None and self._truetime is not None:
                self._promise_safe_time(participant.group, participant.driver)
        self._timer = self._clock.call_later(self._watch_seconds, self._watch)

    def _promise_safe_time(self, group: int, driver: TxnDriver) -> None:
        now = self._clock.monotonic()
        if now - self._safe_time_promised.get(group, -self._safe_time_seconds) \
                < self._safe_time_seconds:
            return
        self._safe_time_promised[group] = now
        self._spawn(self._request(driver, lambda core: core.promise_safe_time()))

    @staticmethod
    async def _request(driver: TxnDriver, action: Callable[[TxnNode], object]) -> None:
        # A driver that stops meanwhile never answers.
        with contextlib.suppress(EngineError, TimeoutError):
            await asyncio.wait_for(driver.request(action), STATUS_SECONDS)

    async def _take_over(self, participant: _Participant) -> None:
        group = participant.group
        try:
            # Leadership confirmed, and every record committed before it applied here.
            await self._groups[group].read_barrier()
        except EngineError:
            participant.taking_over = None
            return
        try:
            view = ShardView(self._shards[group], self._records[group].versions)
            config = self._config(participant_id(group))
            core = TxnNode(dataclasses.replace(config, store=view, versions=view),
                           self._records[group].records())
            driver = TxnDriver(
                node_id=participant_id(group), core=core,
                storage=GroupRecords(self._groups[group], view), transport=self._transport,
                clock=self._clock, tick_seconds=self._tick_seconds,
                on_failure=lambda error: self._lost(participant, error), crash=self._crash,
                on_ready=self._observer(group), participant=f"group-{group}",
                truetime=self._truetime)
            if self.faults:
                driver.arm(self.faults)
            participant.driver = driver
            driver.start()
            log.info("node %d leads group %d: its transaction participant runs here "
                     "(%d unfinished)", self.node_id, group, self._records[group].unfinished())
        finally:
            participant.taking_over = None

    def _observer(self, group: int) -> Callable[[TxnNode, TxnReady], None] | None:
        on_ready = self._on_ready
        if on_ready is None:
            return None
        return lambda core, ready: on_ready(group, core, ready)

    def _lost(self, participant: _Participant, error: BaseException) -> None:
        log.info("node %d: group %d's transaction participant stops here: %s",
                 self.node_id, participant.group, error)
        self._spawn(self._step_down(participant))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _step_down(self, participant: _Participant) -> None:
        if participant.taking_over is not None:
            participant.taking_over.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await participant.taking_over
            participant.taking_over = None
        driver, participant.driver = participant.driver, None
        if driver is not None:
            await driver.stop()

    def arm(self, faults: frozenset[str]) -> None:
        """Arm `faults` on every participant here; ValueError names an unknown one."""
        unknown = sorted(faults - set(TXN_FAULTS))
        if unknown:
            raise ValueError(f"unknown transaction fault {unknown[0]!r}")
        self.faults = faults
        for participant in self._participants:
            if participant.driver is not None:
                participant.driver.arm(faults)

    # ------------------------------------------------------------------ inputs

    def driver(self, group: int) -> TxnDriver | None:
        """The driver of group `group`'s participant, where it runs here."""
        return self._participants[group].driver

    def deliver(self, group: int, message: Message) -> bool:
        """A message for group `group`'s participant: dropped where it does not run (the
        sender sends it again, to the leader it learns of)."""
        driver = self._participants[group].driver
        if driver is None:
            return True
        return driver.deliver(message)

    def coordinator_group(self, ops: Sequence[Op]) -> int:
        """The group that coordinates a transaction: the first operation's."""
        return group_of(ops[0].key, len(self._groups)) if ops else 0

    async def execute(self, txn: str, priority: tuple[int, str], ops: tuple[Op, ...],
                      protocol: TxnProtocol) -> Outcome:
        """Run `txn` with its coordinator group's participant as coordinator. Raises
        NotLeader (definite: nothing began) where that group's participant does not run
        here, OutcomeUnknown when it stops before the outcome is known."""
        group = self.coordinator_group(ops)
        driver = self._participants[group].driver
        if driver is None:
            raise self._not_leader(group)
        return await driver.execute(txn, priority, ops, protocol)

    async def execute_read(self, txn: str, keys: tuple[str, ...], ts: int | None) -> Outcome:
        """A read-only transaction coordinated by the first key's group (as `execute`), read
        at `ts` or, when None, at TrueTime's latest there."""
        group = group_of(keys[0], len(self._groups)) if keys else 0
        driver = self._participants[group].driver
        if driver is None:
            raise self._not_leader(group)
        return await driver.execute_read(txn, keys, ts)

    async def read_replicas(self, keys: Sequence[str], ts: int, timeout: float
                            ) -> tuple[tuple[str, str | None], ...]:
        """A snapshot read at `ts` from this member's replicas of the keys' groups, each
        answered once its safe time has reached `ts` (no write can still land at or below
        it there). Raises ReadNotSafe when one has not within `timeout` seconds,
        ReadBelowHorizon when `ts` is older than the versions kept."""
        deadline = self._clock.monotonic() + timeout
        reads = []
        for key in keys:
            versions = self._records[group_of(key, len(self._groups))].versions
            while versions.safe_time() < ts:
                if self._clock.monotonic() >= deadline:
                    raise ReadNotSafe(ts, versions.safe_time())
                await sleep(self._clock, REPLICA_READ_POLL_SECONDS)
            value = versions.read_at(key.encode(), ts)
            reads.append((key, None if value is None else value.decode(errors="replace")))
        return tuple(reads)

    def _not_leader(self, group: int) -> NotLeader:
        hint = self._groups[group].not_leader()
        if hint.leader_id == self.node_id:
            # Elected, not yet serving (confirming leadership): no other member to send to.
            hint = NotLeader(None, None)
        return hint

    async def in_doubt(self) -> list[tuple[int, InDoubt]]:
        """The unfinished transactions of the participants running here, with their group."""
        found: list[tuple[int, InDoubt]] = []
        for participant in self._participants:
            driver = participant.driver
            if driver is not None:
                # A driver that stops meanwhile never answers: its entries went with it.
                with contextlib.suppress(EngineError, TimeoutError):
                    entries = await asyncio.wait_for(driver.in_doubt(), STATUS_SECONDS)
                    found.extend((participant.group, entry) for entry in entries)
        return found

