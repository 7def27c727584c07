"""Multi-Paxos records on the simulated disk, and the state a member restarts from.

Records are keyed by slot, not by position: a promise record holds the promised ballot, an
acceptance record a batch of (slot, ballot, value) triples (a later one for a slot replaces
an earlier), a decision record a batch of decided slots, and a compaction record notes a
snapshot, whose file holds the state machine. Recovery replays them in order; slots a
snapshot covers are dropped (the snapshot file is trusted even when a crash lost its
record, as the real store does).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    ZERO_BALLOT,
    Accepted,
    Ballot,
    Decision,
    Ready,
    Snapshot,
    SnapshotMeta,
    Value,
)
from distlab.sim.disk import Record

PROMISED = 1
ACCEPTED = 2
DECIDED = 3
COMPACTED = 4

_BALLOT = struct.Struct(">QI")
_VALUE = struct.Struct(">QIBI")  # origin round, origin node, is a no-op, command length
_SLOT = struct.Struct(">Q")
_META = struct.Struct(">Q")


class PaxosRecoveryError(ValueError):
    """The records on disk do not make a member's state (a bug in whoever wrote them)."""


def _encode_value(value: Value) -> bytes:
    command = value.command or b""
    return _VALUE.pack(value.origin.round, value.origin.node, value.command is None,
                       len(command)) + command


def _decode_value(body: bytes, offset: int) -> tuple[Value, int]:
    round_, node, noop, length = _VALUE.unpack_from(body, offset)
    offset += _VALUE.size
    command = None if noop else body[offset:offset + length]
    return Value(command, Ballot(round_, NodeId(node))), offset + length


def _encode_accepted(triples: Sequence[Accepted]) -> bytes:
    parts = []
    for triple in triples:
        parts.append(_SLOT.pack(triple.slot))
        parts.append(_BALLOT.pack(triple.ballot.round, triple.ballot.node))
        parts.append(_encode_value(triple.value))
    return b"".join(parts)


def _decode_accepted(body: bytes) -> list[Accepted]:
    triples, offset = [], 0
    while offset < len(body):
        (slot,) = _SLOT.unpack_from(body, offset)
        round_, node = _BALLOT.unpack_from(body, offset + _SLOT.size)
        value, offset = _decode_value(body, offset + _SLOT.size + _BALLOT.size)
        triples.append(Accepted(slot, Ballot(round_, NodeId(node)), value))
    return triples


def _encode_decided(decisions: Sequence[Decision]) -> bytes:
    return b"".join(_SLOT.pack(d.slot) + _encode_value(d.value) for d in decisions)


def _decode_decided(body: bytes) -> list[Decision]:
    decisions, offset = [], 0
    while offset < len(body):
        (slot,) = _SLOT.unpack_from(body, offset)
        value, offset = _decode_value(body, offset + _SLOT.size)
        decisions.append(Decision(slot, value))
    return decisions


def encode_snapshot_file(snapshot: Snapshot) -> bytes:
    return _META.pack(snapshot.meta.last_index) + snapshot.data


def decode_snapshot_file(data: bytes) -> Snapshot:
    (last,) = _META.unpack_from(data)
    return Snapshot(SnapshotMeta(last), data[_META.size:])


class PaxosFormat:
    """Implements `distlab.sim.storage.DurableFormat` for one Multi-Paxos member."""

    def encode_ready(self, ready: Ready) -> tuple[bytes | None, list[tuple[int, bytes]]]:
        snapshot_file = None
        records: list[tuple[int, bytes]] = []
        if ready.snapshot is not None:
            snapshot_file = encode_snapshot_file(ready.snapshot)
            records.append((COMPACTED, _META.pack(ready.snapshot.meta.last_index)))
        if ready.promised is not None:
            records.append((PROMISED, _BALLOT.pack(ready.promised.round, ready.promised.node)))
        if ready.accepted:
            records.append((ACCEPTED, _encode_accepted(ready.accepted)))
        if ready.decided:
            records.append((DECIDED, _encode_decided(ready.decided)))
        return snapshot_file, records

    def encode_snapshot(self, snapshot: Snapshot) -> tuple[bytes, list[tuple[int, bytes]]]:
        return (encode_snapshot_file(snapshot),
                [(COMPACTED, _META.pack(snapshot.meta.last_index))])


class RecoveredState:
    """Implements the core's `Storage`: what a restarting member reads, once."""

    def __init__(self) -> None:
        self._promised = ZERO_BALLOT
        self._accepted: dict[int, Accepted] = {}
        self._decided: dict[int, Decision] = {}
        self._snapshot: Snapshot | None = None
        self.compacted = 0

    def promised(self) -> Ballot:
        return self._promised

    def accepted(self) -> Sequence[Accepted]:
        return [self._accepted[slot] for slot in sorted(self._accepted)]

    def decided(self) -> Sequence[Decision]:
        return [self._decided[slot] for slot in sorted(self._decided)]

    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def _compact(self, through: int) -> None:
        if through <= self.compacted:
            return
        self.compacted = through
        self._accepted = {s: a for s, a in self._accepted.items() if s > through}
        self._decided = {s: d for s, d in self._decided.items() if s > through}


def recover(records: Sequence[Record], snapshot_file: bytes | None) -> RecoveredState:
    state = RecoveredState()
    for record in records:
        if record.kind == PROMISED:
            round_, node = _BALLOT.unpack(record.body)
            ballot = Ballot(round_, NodeId(node))
            if ballot < state._promised:
                raise PaxosRecoveryError(f"promise record {ballot.describe()} below "
                                         f"{state._promised.describe()}")
            state._promised = ballot
        elif record.kind == ACCEPTED:
            for triple in _decode_accepted(record.body):
                if triple.slot > state.compacted:
                    state._accepted[triple.slot] = triple
        elif record.kind == DECIDED:
            for decision in _decode_decided(record.body):
                if decision.slot > state.compacted:
                    state._decided[decision.slot] = decision
        elif record.kind == COMPACTED:
            (through,) = _META.unpack(record.body)
            state._compact(through)
        else:
            raise PaxosRecoveryError(f"unknown record kind {record.kind}")
    if snapshot_file is not None:
        snapshot = decode_snapshot_file(snapshot_file)
        state._compact(snapshot.meta.last_index)
        state._snapshot = snapshot
    elif state.compacted:
        raise PaxosRecoveryError(f"compacted through {state.compacted} but no snapshot file")
    return state
