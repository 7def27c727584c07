"""A synchronous in-memory cluster of Multi-Paxos cores for unit tests.

Each member keeps a `MemoryStorage` that outlives its restarts; `settle()` hands out Readys
in contract order (persist, send, apply, advance) and delivers messages until nothing moves,
dropping those that a cut link or a stopped member would lose.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    Config,
    MemoryStorage,
    Message,
    MultiPaxos,
    Ready,
    Role,
)


@dataclass
class Member:
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    core: MultiPaxos | None = None
    applied: dict[int, bytes | None] = field(default_factory=dict)
    readys: list[Ready] = field(default_factory=list)


class Cluster:
    def __init__(self, size: int, seed: int = 1, **options: object) -> None:
        self.ids = [NodeId(i) for i in range(1, size + 1)]
        self.voters = frozenset(self.ids)
        self.options = options
        self.rng = Random(seed)
        self.members = {node: Member() for node in self.ids}
        self.inflight: deque[Message] = deque()
        self.cut: set[tuple[NodeId, NodeId]] = set()
        self.sent: list[Message] = []
        for node in self.ids:
            self.start(node)

    def config(self, node: NodeId) -> Config:
        return Config(node_id=node, voters=self.voters, **self.options)  # type: ignore[arg-type]

    def start(self, node: NodeId) -> MultiPaxos:
        member = self.members[node]
        member.core = MultiPaxos(self.config(node), member.storage, Random(self.rng.random()))
        member.applied = {}
        return member.core

    def stop(self, node: NodeId) -> None:
        self.members[node].core = None

    def core(self, node: NodeId) -> MultiPaxos:
        core = self.members[node].core
        assert core is not None
        return core

    def isolate(self, node: NodeId) -> None:
        for other in self.ids:
            if other != node:
                self.cut.add((node, other))
                self.cut.add((other, node))

    def heal(self) -> None:
        self.cut.clear()

    def settle(self, rounds: int = 10_000) -> None:
        for _ in range(rounds):
            moved = False
            for node in self.ids:
                core = self.members[node].core
                while core is not None and core.has_ready():
                    self._handle(node, core.ready())
                    moved = True
            if self.inflight:
                message = self.inflight.popleft()
                target = self.members[message.recipient].core
                if target is not None and (message.sender, message.recipient) not in self.cut:
                    target.step(message)
                moved = True
            if not moved:
                return
        raise AssertionError("the cluster never settled")

    def _handle(self, node: NodeId, ready: Ready) -> None:
        member = self.members[node]
        core = member.core
        assert core is not None
        member.storage.persist(ready)
        member.readys.append(ready)
        for message in ready.messages:
            self.sent.append(message)
            self.inflight.append(message)
        if ready.snapshot is not None:
            member.applied = {}
        for entry in ready.committed_entries:
            member.applied[entry.index] = entry.command
        core.advance()

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for node in self.ids:
                core = self.members[node].core
                if core is not None:
                    core.tick()
            self.settle()

    def leaders(self) -> list[NodeId]:
        return [node for node in self.ids
                if (core := self.members[node].core) is not None and core.role is Role.LEADER]

    def elect(self, node: NodeId) -> MultiPaxos:
        core = self.core(node)
        core.campaign()
        self.settle()
        assert core.role is Role.LEADER, f"n{node} did not become leader: {core.status()}"
        return core

    def propose(self, node: NodeId, *commands: bytes) -> list[int]:
        proposals = self.core(node).propose_batch(list(commands))
        self.settle()
        return [proposal.index for proposal in proposals]
