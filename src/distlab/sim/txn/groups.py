"""Two- and three-phase commit over consensus groups in the simulator (DESIGN §16,
`--participants groups`).

Every node hosts every group (Raft or Multi-Paxos) under the real driver, as the shared world
builds them; each group's replicas keep its KV shard and its transaction records
(`TxnLogMachine`, whose COMMITTED writes go into the shard), and each node runs the
runtime's `GroupParticipants` on its own clock, so group g's participant runs wherever g's
leader is, and moves when leadership does. A restart rebuilds all of it from the node's
disk, as the world rebuilds its groups.

A participant's messages are addressed to participants (group g is participant g + 1) and
travel between members: each rides in a `MemberMessage` from the member that sent it to the
member the sender took for the recipient group's leader, on a network channel of that
group's own (`TXN_CHANNEL + g`: a trace shows group 0's as g2000), so the seeded network
loses, delays, duplicates and cuts them like any other. Between participants whose groups
the same member leads they never leave the member, as on a real node.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, cast

from distlab.apps.kv import KVStateMachine
from distlab.apps.txn_log import TxnLogMachine, Writes, decode_records
from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, StateMachine
from distlab.protocols.txn import (
    CorruptTxnRecord,
    InDoubt,
    LogRecord,
    Message,
    Op,
    Outcome,
    PlantedBugs,
    Protocol,
    Timeouts,
    TxnConfig,
    TxnNode,
    TxnReady,
)
from distlab.protocols.txn import describe as describe_txn
from distlab.protocols.txn import is_request as txn_is_request
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.txn.groups import GroupParticipants, participant_id
from distlab.sim.disk import Record, Recovered
from distlab.sim.network import MessageKinds, NetworkConditions
from distlab.sim.paxos.engine import PaxosEngine, PaxosOptions
from distlab.sim.raft.engine import RaftEngine, RaftOptions
from distlab.sim.txn.invariants import InvariantViolation, TxnInvariants
from distlab.sim.txn.workload import BankClients, BankSettings, NoCoordinator
from distlab.sim.txn.world import DEFAULT_TIMEOUTS, TICK_SECONDS
from distlab.sim.world import Engine, Instance, NodeSettings, SimTransport, World
from distlab.wire.sharding import group_of

# Group g's participants' messages travel on channel TXN_CHANNEL + g.
TXN_CHANNEL = 2000
# The consensus engines' tick, as their own simulations run them.
CONSENSUS_TICK_SECONDS = 0.025
ENGINES = ("raft", "paxos")
# A client sent away by a member that does not lead follows this many hints, waiting this
# long where there is none, before it gives the attempt up (nothing began).
REDIRECTS = 8
REDIRECT_SECONDS = 0.02
# The timestamp of the bank's opening balances in the versions, below any TrueTime reading.
INITIAL_TS = 0
OPENING_TXN = b"opening"


def spread_accounts(count: int, groups: int) -> list[str]:
    """`count` account names dealt over the groups in turn (by crc32 alone, a few accounts
    may all land in one group, and no transfer would span two)."""
    names: list[str] = []
    found: dict[int, list[str]] = {group: [] for group in range(groups)}
    candidates = (f"acct{index}" for index in itertools.count())
    for index in range(count):
        wanted = index % groups
        while not found[wanted]:
            name = next(candidates)
            found[group_of(name, groups)].append(name)
        names.append(found[wanted].pop(0))
    return names


def group_label(participant: NodeId) -> str:
    return f"group {int(participant) - 1}"


@dataclass(frozen=True, slots=True)
class MemberMessage:
    """A participant's message between members: `sender` is the member that runs the
    sending participant, `recipient` the member it was sent to."""

    sender: NodeId
    recipient: NodeId
    message: Message


class WithMemberMessages:
    """Implements `MessageKinds` for a consensus engine's messages and the participants'."""

    def __init__(self, consensus: MessageKinds) -> None:
        self._consensus = consensus

    def sender(self, message: Any) -> NodeId:
        sender: NodeId = message.sender
        return sender

    def recipient(self, message: Any) -> NodeId:
        recipient: NodeId = message.recipient
        return recipient

    def is_request(self, message: Any) -> bool:
        if isinstance(message, MemberMessage):
            return txn_is_request(message.message)
        return self._consensus.is_request(message)

    def is_snapshot(self, message: Any) -> bool:
        return not isinstance(message, MemberMessage) and self._consensus.is_snapshot(message)

    def describe(self, message: Any) -> str:
        if isinstance(message, MemberMessage):
            return describe_txn(message.message)
        return self._consensus.describe(message)


@dataclass(frozen=True, slots=True)
class GroupTxnOptions:
    protocol: Protocol
    faults: str
    bank: BankSettings
    engine: str = "raft"
    raft: RaftOptions = field(default_factory=RaftOptions)
    paxos: PaxosOptions = field(default_factory=PaxosOptions)
    planted_bugs: frozenset[str] = frozenset()
    # Spanner's timestamps: each participant takes its node's TrueTime, every replica keeps
    # versions (`distlab sim spanner`).
    timestamps: bool = False

    def snapshot_entries(self) -> int:
        return (self.raft if self.engine == "raft" else self.paxos).snapshot_entries


class ObservedTxnLog(TxnLogMachine):
    """A group's transaction records, each applied record also shown to `observe`, and
    every record the versions refuse (a timestamp that rewrites the past) to `refused`."""

    def __init__(self, apply_writes: Callable[[Writes], None],
                 observe: Callable[[LogRecord], None],
                 refused: Callable[[int], None] | None = None) -> None:
        super().__init__(apply_writes)
        self._observe = observe
        self._refused = refused

    def apply(self, index: int, command: bytes) -> bytes:
        try:
            records = decode_records(command)
        except CorruptTxnRecord:
            records = []  # skipped by every replica alike
        for record in records:
            self._observe(record)
        errors = self.timestamp_errors
        result = super().apply(index, command)
        if self.timestamp_errors > errors and self._refused is not None:
            self._refused(index)
        return result


class _Inbox:
    """Implements the network's `Endpoint` for one group's participant on one member."""

    def __init__(self, participants: GroupParticipants, group: int) -> None:
        self._participants = participants
        self._group = group

    def deliver(self, message: Any) -> bool:
        assert isinstance(message, MemberMessage)
        return self._participants.deliver(self._group, message.message)

    def report_unreachable(self, peer: NodeId) -> None:
        pass  # the transaction cores retransmit on their own timers

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        raise AssertionError("transaction messages are never snapshots")


class GroupTxnEngine:
    """Implements `Engine` (the groups, delegated to Raft or Multi-Paxos) and `NodeService`
    (each node's group participants), and watches both."""

    def __init__(self, world: GroupTxnWorld, options: GroupTxnOptions) -> None:
        self._world = world
        self.options = options
        self.consensus: Engine = (RaftEngine(world, options.raft) if options.engine == "raft"
                                  else PaxosEngine(world, options.paxos))
        self.name = self.consensus.name
        self.kinds = WithMemberMessages(self.consensus.kinds)
        self.invariants = TxnInvariants(label=group_label)
        self.participants: dict[NodeId, GroupParticipants] = {}
        self._inboxes: dict[tuple[NodeId, int], _Inbox] = {}
        world.services.append(self)
        for group in range(world.groups):
            world.channels[TXN_CHANNEL + group] = self._inbox_of(group)

    # ------------------------------------------------------------------ the groups

    def start_instance(self, node: NodeId, group: int, voters: frozenset[NodeId],
                       records: Sequence[Record], snapshot_file: bytes | None,
                       rng: Random) -> Instance:
        return self.consensus.start_instance(node, group, voters, records, snapshot_file, rng)

    def instance_stopped(self, node: NodeId, group: int) -> None:
        self.consensus.instance_stopped(node, group)

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        if group < TXN_CHANNEL:
            self.consensus.message_sent(node, group, message)
        # The participants' messages are checked in their Readys (those to itself too).

    def txn_log(self, node: NodeId, group: int, machine: StateMachine) -> TxnLogMachine:
        assert isinstance(machine, KVStateMachine)
        participant = participant_id(group)
        invariants = self.invariants
        world = self._world

        def observe(record: LogRecord) -> None:
            if world.trace is not None:
                world.note(f"n{node} g{group} applies {record.kind.name} {record.txn}")
            self.guard(lambda: invariants.record_applied(participant, record))

        def refused(index: int) -> None:
            world.fail(f"timestamps: n{node}'s replica of group {group} refused a record of "
                       f"entry {index}: its versions would have rewritten the past (see the "
                       f"error logged)")

        log = ObservedTxnLog(machine.apply_writes, observe, refused)
        if self.options.timestamps:
            # The opening balances, as versions too: what reads at a timestamp find before
            # any transfer (the workload's history opens with them at INITIAL_TS).
            opening = {key.encode(): value.encode()
                       for key, value in sorted(world.initial_data.items())
                       if world.group_of(key) == group}
            log.versions.prepare(OPENING_TXN, INITIAL_TS, opening)
            log.versions.commit(OPENING_TXN, INITIAL_TS)
        return log

    # ------------------------------------------------------------------ the participants

    def node_started(self, node: NodeId, recovered: Recovered, alive: Callable[[], bool],
                     rng: Random) -> None:
        world = self._world
        sim = world.nodes[node]
        drivers: list[Driver[Any]] = sim.drivers
        transports = [SimTransport(world.network, node, TXN_CHANNEL + group, alive,
                                   self.message_sent) for group in range(world.groups)]

        def send(member: NodeId, group: int, message: Message, context: Any) -> None:
            transports[group].send(MemberMessage(node, member, message), context)

        participants = GroupParticipants(
            node_id=node, groups=drivers,
            shards=[cast(KVStateMachine, driver.machine.machine) for driver in drivers],
            records=[cast(TxnLogMachine, driver.machine.txn_log) for driver in drivers],
            send=send, clock=sim.clock, tick_seconds=TICK_SECONDS, config=self.config,
            truetime=sim.truetime if self.options.timestamps else None,
            planted_bugs=PlantedBugs.from_names(self.options.planted_bugs),
            on_ready=self._observe)
        self.participants[node] = participants
        for group in range(world.groups):
            self._inboxes[(node, group)] = _Inbox(participants, group)
        participants.start()

    def node_stopped(self, node: NodeId) -> None:
        participants = self.participants.pop(node, None)
        for group in range(self._world.groups):
            self._inboxes.pop((node, group), None)
        if participants is not None:
            self._world.loop.create_task(participants.stop())

    def config(self, participant: NodeId) -> TxnConfig:
        return TxnConfig(node_id=participant, owner=self._world.owner,
                         timeouts=self._world.timeouts, timestamps=self.options.timestamps,
                         planted_bugs=PlantedBugs.from_names(self.options.planted_bugs))

    def _inbox_of(self, group: int) -> Callable[[NodeId], _Inbox | None]:
        return lambda node: self._inboxes.get((node, group))

    def _observe(self, group: int, core: TxnNode, ready: TxnReady) -> None:
        self.guard(lambda: self.invariants.after_ready(participant_id(group), core, ready))

    def guard(self, check: Callable[[], None]) -> None:
        try:
            check()
        except InvariantViolation as violation:
            self._world.fail(f"invariant violated: {violation}")


class GroupTxnWorld(World):
    """The shared world, its groups keeping transaction records beside their KV shards (the
    bank's opening balances in them), and each node running its groups' participants."""

    def __init__(self, *, seed: int, nodes: int, groups: int, options: GroupTxnOptions,
                 settings: Sequence[NodeSettings], conditions: NetworkConditions,
                 initial_data: Mapping[str, str], timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 trace: bool = False, replay_hint: str | None = None,
                 vclock_log: Callable[[str], object] | None = None) -> None:
        self.initial_data = dict(initial_data)
        self.timeouts = timeouts
        self._groups = groups
        super().__init__(
            seed=seed, nodes=nodes, groups=groups,
            make_engine=lambda world: GroupTxnEngine(cast(GroupTxnWorld, world), options),
            make_machine=self._shard, make_txn_log=self._txn_log,
            timing=Timing(tick_seconds=CONSENSUS_TICK_SECONDS,
                          snapshot_entries=options.snapshot_entries()),
            settings=settings, conditions=conditions, trace=trace, replay_hint=replay_hint,
            vclock_log=vclock_log)

    @property
    def txn_engine(self) -> GroupTxnEngine:
        engine = self.engine
        assert isinstance(engine, GroupTxnEngine)
        return engine

    def owner(self, key: str) -> NodeId:
        return participant_id(self.group_of(key))

    def group_of(self, key: str) -> int:
        return group_of(key, self._groups)

    def _shard(self, node: NodeId, group: int) -> StateMachine:
        shard = KVStateMachine()
        shard.apply_writes(sorted((key, value) for key, value in self.initial_data.items()
                                  if self.group_of(key) == group))
        return shard

    def _txn_log(self, node: NodeId, group: int, machine: StateMachine) -> StateMachine:
        return self.txn_engine.txn_log(node, group, machine)

    def shard(self, node: NodeId, group: int) -> KVStateMachine | None:
        driver = self.driver(node, group)
        return cast(KVStateMachine, driver.machine.machine) if driver is not None else None

    def txn_log(self, node: NodeId, group: int) -> TxnLogMachine | None:
        driver = self.driver(node, group)
        return cast(TxnLogMachine, driver.machine.txn_log) if driver is not None else None


class GroupBankWorkload(BankClients):
    """The bank over groups: a transaction begins at the member leading the group of its
    first account, found as a client finds it (following NotLeader's hints)."""

    def __init__(self, world: GroupTxnWorld, rng: Random, settings: BankSettings,
                 protocol: Protocol, accounts: Sequence[str]) -> None:
        super().__init__(world, rng, settings, protocol, world.owner, accounts)
        self.groups = world

    def _begin(self, txn: str, priority: tuple[int, str], ops: tuple[Op, ...]
               ) -> Awaitable[Outcome] | None:
        live = self.groups.live_nodes()
        if not live:
            return None
        return self._at_leader(
            self.rng.choice(sorted(live)),
            lambda participants: participants.execute(txn, priority, ops, self.protocol))

    async def _at_leader(self, node: NodeId,
                         begin: Callable[[GroupParticipants], Awaitable[Outcome]]) -> Outcome:
        """`begin` at `node`'s participants, or at the member their NotLeader names."""
        world = self.groups
        for _ in range(REDIRECTS):
            participants = world.txn_engine.participants.get(node)
            hint: NodeId | None = None
            if participants is not None:
                try:
                    return await begin(participants)
                except NotLeader as refusal:
                    hint = refusal.leader_id
            if hint is None or hint == node:
                await asyncio.sleep(REDIRECT_SECONDS)
                live = world.live_nodes()
                if not live:
                    break
                hint = self.rng.choice(sorted(live))
            node = hint
        raise NoCoordinator()

    def _running(self) -> list[tuple[NodeId, int, TxnNode]]:
        """Every group participant's core, with the member it runs on."""
        found = []
        for node, participants in sorted(self.groups.txn_engine.participants.items()):
            for group in range(self.groups.groups):
                driver = participants.driver(group)
                if driver is not None:
                    found.append((node, group, driver.core))
        return found

    def _in_doubt(self) -> list[InDoubt]:
        return [entry for _, _, core in self._running() for entry in core.in_doubt()]

    def _unfinished(self) -> str | None:
        world = self.groups
        problems = []
        down = [node for node, sim in sorted(world.nodes.items())
                if not sim.up and sim.refused is None]
        if down:
            problems.append(f"nodes down: {down}")
        running = self._running()
        live = world.live_nodes()
        for group in range(world.groups):
            cores = [(node, core) for node, g, core in running if g == group]
            if not cores:
                problems.append(f"group {group}'s participant runs nowhere")
            for node, core in cores:
                entries = core.in_doubt()
                if entries:
                    problems.append(f"group {group} at n{node}: " + ", ".join(
                        f"{entry.txn} {entry.role} {entry.state}" for entry in entries))
            applied = set()
            for node in live:
                driver = world.driver(node, group)
                log = world.txn_log(node, group)
                if driver is None or log is None:
                    continue
                applied.add(driver.status().applied_index)
                if log.unfinished():
                    problems.append(f"group {group} at n{node} keeps {log.unfinished()} "
                                    f"unfinished transactions")
            if len(applied) > 1:
                problems.append(f"group {group}'s members applied up to different indexes "
                                f"{sorted(applied)}")
        if not problems:
            return None
        return "transactions are still unfinished or groups behind: " + "; ".join(problems)

    def _held(self) -> str | None:
        world = self.groups
        for node in world.live_nodes():
            held = 0
            for account in self.accounts:
                shard = world.shard(node, world.group_of(account))
                assert shard is not None
                value = shard.get(account.encode())
                held += int(value or 0)
            if held != self.total:
                return (f"bank: the accounts hold {held} in n{node}'s shards after healing, "
                        f"not {self.total}")
        return None
