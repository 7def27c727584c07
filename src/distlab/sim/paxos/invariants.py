"""Multi-Paxos safety properties, checked after every Ready of every member of one group.

The checker sees each member's Readys (as the driver acknowledges them), the messages it
sends (as the transport takes them), the commands proposed, and each member's core. Its
records outlive crashes: every acceptance made durable, every promise said, every value
proposed, and each slot's chosen value. The properties:

- at most one value is chosen per slot (a value is chosen once a majority of acceptors
  accepted it under one ballot), and a chosen value stays chosen: no later majority
  acceptance in that slot carries another value;
- only proposed values are chosen: a client command that some leader proposed, or a no-op;
- a member decides (and applies) only a chosen value, and every member applies the same
  value at every slot, in slot order, once per incarnation;
- an acceptor's promise never goes back, also across restarts on the simulated disk: a
  restarted acceptor holds at least every ballot it promised or accepted under, and still
  holds every acceptance it acknowledged (unless the slot was since decided and dropped).

Messages are observed as the transport takes them, not when the driver finishes the Ready:
a reply that leaves before its Ready is durable has been said, whatever happens next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distlab.core.ids import NodeId
from distlab.core.quorum import majority
from distlab.protocols.multipaxos import (
    ZERO_BALLOT,
    AcceptedReply,
    Ballot,
    Message,
    MultiPaxos,
    Promise,
    Ready,
    Value,
)


class InvariantViolation(AssertionError):
    """A safety property does not hold."""


@dataclass(slots=True)
class _Ballot:
    value: Value
    acceptors: set[NodeId] = field(default_factory=set)


@dataclass(slots=True)
class _Cursor:
    applied: int
    promised: Ballot


class PaxosInvariants:
    """The invariants of one Multi-Paxos group, over all its members and incarnations."""

    def __init__(self, group: int, voters: frozenset[NodeId]) -> None:
        self.group = group
        self.quorum = majority(len(voters))
        self.acceptances: dict[tuple[int, Ballot], _Ballot] = {}
        self.chosen: dict[int, Value] = {}
        self.proposed: set[tuple[bytes, Ballot]] = set()
        self.applied: dict[int, tuple[int, bytes | None]] = {}
        # What each member said: the highest ballot it promised (or accepted under), and
        # the acceptances it acknowledged, which it must not forget.
        self.said_promised: dict[NodeId, Ballot] = {}
        self.acknowledged: dict[NodeId, dict[int, Ballot]] = {}
        self._cursors: dict[NodeId, _Cursor] = {}
        self.checks = 0

    # --- lifecycle ---

    def node_started(self, node: NodeId, core: MultiPaxos) -> None:
        said = self.said_promised.get(node, ZERO_BALLOT)
        self._require(core.promised >= said,
                      f"durability: n{node} promised {said.describe()}, but restarted with "
                      f"promise {core.promised.describe()}")
        for slot, ballot in sorted(self.acknowledged.get(node, {}).items()):
            if slot <= core.log_start:
                continue
            held = core.accepted.get(slot)
            self._require(held is not None and held.ballot >= ballot,
                          f"durability: n{node} acknowledged slot {slot} at "
                          f"{ballot.describe()}, but restarted holding "
                          f"{held.ballot.describe() if held else 'nothing'} there")
        for slot, value in core.decided.items():
            self._check_decided(node, slot, value)
        self._cursors[node] = _Cursor(core.applied, core.promised)

    def node_stopped(self, node: NodeId) -> None:
        self._cursors.pop(node, None)

    # --- observations ---

    def proposed_commands(self, commands: list[bytes], ballot: Ballot) -> None:
        for command in commands:
            self.proposed.add((command, ballot))

    def message_sent(self, node: NodeId, message: Message) -> None:
        if isinstance(message, Promise) and message.ok and not message.probe:
            self._said(node, message.ballot)
        elif isinstance(message, AcceptedReply) and message.ok and message.slots:
            self._said(node, message.ballot)
            acknowledged = self.acknowledged.setdefault(node, {})
            for slot in message.slots:
                if message.ballot > acknowledged.get(slot, ZERO_BALLOT):
                    acknowledged[slot] = message.ballot

    def after_ready(self, node: NodeId, core: MultiPaxos, ready: Ready) -> None:
        self.checks += 1
        cursor = self._cursors[node]
        self._require(core.promised >= cursor.promised,
                      f"n{node}'s promise went back from {cursor.promised.describe()} to "
                      f"{core.promised.describe()}")
        cursor.promised = core.promised
        for triple in ready.accepted:
            self._record_acceptance(node, triple.slot, triple.ballot, triple.value)
        if ready.snapshot is not None:
            cursor.applied = max(cursor.applied, ready.snapshot.meta.last_index)
        for decision in ready.decided:
            self._check_decided(node, decision.slot, decision.value)
        for entry in ready.committed_entries:
            self._require(entry.index == cursor.applied + 1,
                          f"n{node} applied slot {entry.index} after {cursor.applied}")
            cursor.applied = entry.index
            applied = (entry.term, entry.command)
            known = self.applied.setdefault(entry.index, applied)
            self._require(known == applied,
                          f"replicas disagree: n{node} applied {_describe_entry(applied)} at "
                          f"slot {entry.index}, another member {_describe_entry(known)}")
            chosen = self.chosen.get(entry.index)
            self._require(chosen is not None
                          and (chosen.origin.as_int(), chosen.command) == applied,
                          f"n{node} applied {_describe_entry(applied)} at slot {entry.index}, "
                          f"but {_describe(chosen)} was chosen there")

    # --- the properties ---

    def _said(self, node: NodeId, ballot: Ballot) -> None:
        if ballot > self.said_promised.get(node, ZERO_BALLOT):
            self.said_promised[node] = ballot

    def _record_acceptance(self, node: NodeId, slot: int, ballot: Ballot, value: Value) -> None:
        record = self.acceptances.get((slot, ballot))
        if record is None:
            record = self.acceptances[(slot, ballot)] = _Ballot(value)
        self._require(record.value == value,
                      f"ballot {ballot.describe()} carried two values in slot {slot}: "
                      f"{_describe(record.value)} and {_describe(value)}")
        record.acceptors.add(node)
        if len(record.acceptors) < self.quorum:
            return
        self._require(value.command is None or (value.command, value.origin) in self.proposed,
                      f"slot {slot} chose {_describe(value)}, which no leader proposed")
        known = self.chosen.setdefault(slot, value)
        self._require(known == value,
                      f"two values chosen in slot {slot}: {_describe(known)}, then "
                      f"{_describe(value)} by a majority at ballot {ballot.describe()}")

    def _check_decided(self, node: NodeId, slot: int, value: Value) -> None:
        chosen = self.chosen.get(slot)
        self._require(chosen is not None,
                      f"n{node} decided {_describe(value)} in slot {slot}, which no majority "
                      "accepted")
        self._require(chosen == value,
                      f"n{node} decided {_describe(value)} in slot {slot}, but "
                      f"{_describe(chosen)} was chosen there")

    def _require(self, condition: bool, problem: str) -> None:
        if not condition:
            raise InvariantViolation(f"group {self.group}: {problem}")


def _describe_entry(entry: tuple[int, bytes | None]) -> str:
    term, command = entry
    origin = f"{term >> 32}.{term & 0xFFFFFFFF}"
    return f"a no-op of {origin}" if command is None else \
        f"a command of {origin} ({len(command)} B)"


def _describe(value: Value | None) -> str:
    if value is None:
        return "nothing"
    if value.command is None:
        return f"a no-op of {value.origin.describe()}"
    return f"a command of {value.origin.describe()} ({len(value.command)} B)"
