"""A synchronous harness for the transaction cores: messages go through a queue the test
drains, each node's log is a list of encoded records, and a crash rebuilds a node from its
log alone."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from distlab.core.ids import NodeId
from distlab.core.truetime import TTInterval
from distlab.protocols.txn import (
    Message,
    Outcome,
    PlantedBugs,
    Protocol,
    TxnConfig,
    TxnNode,
    TxnReady,
    decode,
    parse_op,
)


def owner_of(nodes: int):
    return lambda key: NodeId(zlib.crc32(key.encode()) % nodes + 1)


class Versions:
    """A participant's versions by timestamp (what a group's replicated records keep)."""

    def __init__(self) -> None:
        self.versions: dict[str, list[tuple[int, str]]] = {}

    def read_at(self, key: str, ts: int) -> str | None:
        older = [value for at, value in self.versions.get(key, []) if at <= ts]
        return older[-1] if older else None

    def commit_at(self, writes, ts: int) -> None:
        for key, value in writes:
            self.versions.setdefault(key, []).append((ts, value))


@dataclass
class Cluster:
    size: int
    bugs: PlantedBugs = field(default_factory=PlantedBugs)
    initial: dict[str, str] = field(default_factory=dict)
    # Spanner's timestamps: each node's versions, and the TrueTime interval it observes
    # (set with `set_time`).
    timestamps: bool = False

    def __post_init__(self) -> None:
        self.owner = owner_of(self.size)
        self.logs: dict[NodeId, list[tuple[int, bytes]]] = {}
        self.nodes: dict[NodeId, TxnNode | None] = {}
        self.queue: list[Message] = []
        self.outcomes: dict[str, Outcome] = {}
        self.down: set[NodeId] = set()
        self.sent: list[Message] = []
        self.versions: dict[NodeId, Versions] = {}
        self.times: dict[NodeId, TTInterval] = {}
        for number in range(1, self.size + 1):
            node_id = NodeId(number)
            self.logs[node_id] = []
            self.start(node_id)

    def config(self, node_id: NodeId) -> TxnConfig:
        initial = {key: value for key, value in self.initial.items()
                   if self.owner(key) == node_id}
        versions = self.versions.setdefault(node_id, Versions())
        return TxnConfig(node_id=node_id, owner=self.owner, initial_data=initial,
                         planted_bugs=self.bugs, timestamps=self.timestamps,
                         versions=versions if self.timestamps else None)

    def set_time(self, node_id: int, earliest: int, latest: int) -> None:
        """What TrueTime says at `node_id` from now on."""
        self.times[NodeId(node_id)] = TTInterval(earliest, latest)
        node = self.nodes.get(NodeId(node_id))
        if node is not None:
            node.observe_time(self.times[NodeId(node_id)])

    def start(self, node_id: NodeId) -> None:
        records = [decode(kind, body) for kind, body in self.logs[node_id]]
        node = self.nodes[node_id] = TxnNode(self.config(node_id), records)
        if node_id in self.times:
            node.observe_time(self.times[node_id])
        self.down.discard(node_id)
        self.drain_node(node_id)

    def crash(self, node_id: NodeId) -> None:
        self.nodes[node_id] = None
        self.down.add(node_id)

    def node(self, node_id: int) -> TxnNode:
        node = self.nodes[NodeId(node_id)]
        assert node is not None
        return node

    def drain_node(self, node_id: NodeId) -> None:
        node = self.nodes[node_id]
        while node is not None and node.has_ready():
            ready = node.ready()
            for record in ready.records:
                self.logs[node_id].append((int(record.kind), record.encode()))
            self.queue.extend(ready.messages)
            self.sent.extend(ready.messages)
            for outcome in ready.outcomes:
                self.outcomes[outcome.txn] = outcome
            node.advance()

    def begin(self, at: int, txn: str, ops: list[str], protocol: str = "2pc",
              priority: int = 0) -> None:
        self.node(at).begin(txn, (priority, txn), tuple(parse_op(op) for op in ops),
                            Protocol(protocol))
        self.drain_node(NodeId(at))

    def deliver(self, limit: int = 10_000, *, drop=lambda message: False) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            message = self.queue.pop(0)
            target = self.nodes.get(message.recipient)
            if target is None or drop(message):
                continue
            target.step(message)
            self.drain_node(message.recipient)
        raise AssertionError("messages never stop")

    def tick(self, ticks: int = 1) -> None:
        for _ in range(ticks):
            for node_id, node in self.nodes.items():
                if node is not None:
                    node.tick()
                    self.drain_node(node_id)
            self.deliver()

    def store(self, node_id: int) -> dict[str, str]:
        return self.node(node_id).participant.store


class Recorder:
    """A driver's Storage and Transport ports that keep what they are given."""


    def __init__(self) -> None:
        self.records: list[Any] = []
        self.sent: list[Any] = []
        self.crashed: str | None = None

    async def persist(self, ready: TxnReady) -> None:
        self.records.extend(ready.records)

    def save_snapshot(self, snapshot: Any) -> None:
        raise AssertionError

    def close(self) -> None:
        pass

    def send(self, message: Any, trace_context: Any) -> None:
        self.sent.append(message)
