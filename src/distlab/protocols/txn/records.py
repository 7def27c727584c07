"""What coordinators and participants force to their log, and how it is encoded.

Participant: PREPARED (the writes it will apply and the locks it holds, before it votes yes),
ROUND (3PC: the round it promised and the value it accepted, before it answers), COMMITTED
and ABORTED. Coordinator: COMMIT (before it sends COMMIT) and END (after every participant
acknowledged: the transaction may be forgotten), both with the values the transaction read,
so that a coordinator restarted (or, over groups, a new leader) answers a client's retry in
full. Presumed abort: nothing is logged for an
abort, and a transaction the coordinator has no record of was aborted.

Each record is one log record of its kind whose body is JSON; the node's WAL (or the
simulator's disk) frames and checksums it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.txn.messages import NO_ROUND, Protocol, Round
from distlab.protocols.txn.ops import LockMode


class RecordKind(enum.IntEnum):
    PREPARED = 1
    ROUND = 2
    COMMITTED = 3
    ABORTED = 4
    COORDINATOR_COMMIT = 5
    COORDINATOR_END = 6
    # A group's promise to assign no timestamp at or below `ts` (a snapshot read's, or
    # the leader's periodic one, so that reads at replicas need not wait for a write).
    SAFE_TIME = 7


@dataclass(frozen=True, slots=True)
class LogRecord:
    kind: RecordKind
    txn: str
    coordinator: NodeId = NO_NODE
    participants: tuple[NodeId, ...] = ()
    protocol: Protocol = Protocol.TWO_PHASE
    priority: tuple[int, str] = (0, "")
    writes: tuple[tuple[str, str], ...] = ()
    locks: tuple[tuple[str, LockMode], ...] = ()
    promised: Round = NO_ROUND
    accepted_round: Round = NO_ROUND
    accepted_commit: bool | None = None
    reads: tuple[tuple[str, str | None], ...] = ()
    # With timestamps: PREPARED's prepare timestamp, COMMITTED's, COORDINATOR_COMMIT's and
    # END's commit timestamp, SAFE_TIME's promise.
    ts: int | None = None

    def encode(self) -> bytes:
        body: dict[str, object] = {"txn": self.txn}
        if self.ts is not None:
            body["ts"] = self.ts
        kind = self.kind
        if kind is RecordKind.PREPARED:
            body.update(coordinator=self.coordinator, participants=list(self.participants),
                        protocol=self.protocol.value, priority=list(self.priority),
                        writes=[list(pair) for pair in self.writes],
                        locks=[[key, mode.value] for key, mode in self.locks],
                        reads=[list(pair) for pair in self.reads])
        elif kind is RecordKind.ROUND:
            body.update(promised=list(self.promised), accepted_round=list(self.accepted_round),
                        accepted_commit=self.accepted_commit)
        elif kind is RecordKind.COORDINATOR_COMMIT:
            body.update(participants=list(self.participants), protocol=self.protocol.value,
                        reads=[list(pair) for pair in self.reads])
        elif kind is RecordKind.COORDINATOR_END and self.reads:
            body.update(reads=[list(pair) for pair in self.reads])
        return json.dumps(body, separators=(",", ":")).encode()


class CorruptTxnRecord(ValueError):
    """A record that decodes to nothing this log writes."""


def decode(kind: int, body: bytes) -> LogRecord:
    try:
        data = json.loads(body)
        record = _decode(RecordKind(kind), data)
        ts = data.get("ts")
        return record if ts is None else dataclasses.replace(record, ts=int(ts))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise CorruptTxnRecord(f"transaction log record of kind {kind}: {error}") from None


def _decode(record_kind: RecordKind, data: dict[str, Any]) -> LogRecord:
    txn = str(data["txn"])
    if record_kind is RecordKind.PREPARED:
        return LogRecord(
            record_kind, txn, coordinator=NodeId(int(data["coordinator"])),
            participants=tuple(NodeId(int(n)) for n in data["participants"]),
            protocol=Protocol(data["protocol"]),
            priority=(int(data["priority"][0]), str(data["priority"][1])),
            writes=tuple((str(k), str(v)) for k, v in data["writes"]),
            locks=tuple((str(k), LockMode(m)) for k, m in data["locks"]),
            reads=_reads(data["reads"]))
    if record_kind is RecordKind.ROUND:
        commit = data["accepted_commit"]
        return LogRecord(
            record_kind, txn, promised=_round(data["promised"]),
            accepted_round=_round(data["accepted_round"]),
            accepted_commit=None if commit is None else bool(commit))
    if record_kind is RecordKind.COORDINATOR_COMMIT:
        return LogRecord(record_kind, txn,
                         participants=tuple(NodeId(int(n)) for n in data["participants"]),
                         protocol=Protocol(data["protocol"]),
                         reads=_reads(data.get("reads", [])))
    if record_kind is RecordKind.COORDINATOR_END:
        return LogRecord(record_kind, txn, reads=_reads(data.get("reads", [])))
    return LogRecord(record_kind, txn)


def _reads(value: list[list[str | None]]) -> tuple[tuple[str, str | None], ...]:
    return tuple((str(key), None if read is None else str(read)) for key, read in value)


def _round(value: list[int]) -> Round:
    return (int(value[0]), int(value[1]))
