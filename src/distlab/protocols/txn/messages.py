"""The messages between coordinators and participants, as frozen dataclasses.

Every message names its transaction, sender and recipient. A `Round` orders the attempts to
decide a 3PC transaction: the coordinator's own is `COORDINATOR_ROUND`; a participant that
runs the termination protocol takes a higher one, `(counter, its node id)`, and a
participant that has answered a round ignores the proposals of lower ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distlab.core.ids import NodeId
from distlab.protocols.txn.ops import Op

Round = tuple[int, int]
COORDINATOR_ROUND: Round = (0, 0)
NO_ROUND: Round = (-1, 0)


class Protocol(enum.Enum):
    TWO_PHASE = "2pc"
    THREE_PHASE = "3pc"


@dataclass(frozen=True, slots=True)
class Prepare:
    """Coordinator -> participant: lock, evaluate and vote on this share of a transaction."""

    sender: NodeId
    recipient: NodeId
    txn: str
    protocol: Protocol
    # Wait-die age: lower is older; a retried transaction keeps its first one.
    priority: tuple[int, str]
    ops: tuple[Op, ...]
    participants: tuple[NodeId, ...]


@dataclass(frozen=True, slots=True)
class Vote:
    sender: NodeId
    recipient: NodeId
    txn: str
    protocol: Protocol
    yes: bool
    reason: str = ""
    reads: tuple[tuple[str, str | None], ...] = ()
    # With timestamps (2PC over groups): the participant's prepare timestamp.
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class PreDecide:
    """3PC: accept `commit` (PRE-COMMIT, or a terminator's PRE-ABORT) in `round`."""

    sender: NodeId
    recipient: NodeId
    txn: str
    round: Round
    commit: bool


@dataclass(frozen=True, slots=True)
class PreDecideAck:
    sender: NodeId
    recipient: NodeId
    txn: str
    round: Round
    commit: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: COMMIT or ABORT. Final wherever it is received."""

    sender: NodeId
    recipient: NodeId
    txn: str
    commit: bool
    # With timestamps: the commit timestamp (sent only once TrueTime is past it).
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionAck:
    """Participant -> coordinator: the outcome is durable here; the coordinator may forget."""

    sender: NodeId
    recipient: NodeId
    txn: str


@dataclass(frozen=True, slots=True)
class Inquire:
    """2PC participant in doubt -> coordinator: what was decided?"""

    sender: NodeId
    recipient: NodeId
    txn: str


@dataclass(frozen=True, slots=True)
class StateRequest:
    """3PC terminator -> participant: your state, and promise to ignore lower rounds."""

    sender: NodeId
    recipient: NodeId
    txn: str
    round: Round


@dataclass(frozen=True, slots=True)
class StateReply:
    sender: NodeId
    recipient: NodeId
    txn: str
    round: Round
    # "prepared", "precommitted", "preaborted", "committed" or "aborted"
    state: str
    accepted_round: Round = NO_ROUND
    accepted_commit: bool | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRead:
    """Coordinator -> participant: the values of `keys` at timestamp `ts`, without locks
    (a read-only transaction): answered once no write at or below `ts` can still come."""

    sender: NodeId
    recipient: NodeId
    txn: str
    ts: int
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnapshotReadReply:
    sender: NodeId
    recipient: NodeId
    txn: str
    ts: int
    reads: tuple[tuple[str, str | None], ...] = ()
    # Empty when answered; else why it cannot be (no timestamps here, a read below the
    # versions kept).
    refusal: str = ""


Message = (Prepare | Vote | PreDecide | PreDecideAck | Decision | DecisionAck | Inquire
           | StateRequest | StateReply | SnapshotRead | SnapshotReadReply)

REQUESTS = (Prepare, PreDecide, Decision, Inquire, StateRequest, SnapshotRead)


def is_request(message: object) -> bool:
    return isinstance(message, REQUESTS)


def describe(message: Message) -> str:
    name = type(message).__name__
    details = ""
    if isinstance(message, Prepare):
        details = f" {message.protocol.value} ops={','.join(op.text() for op in message.ops)}"
    elif isinstance(message, Vote):
        details = " yes" if message.yes else f" no ({message.reason})"
    elif isinstance(message, (PreDecide, PreDecideAck)):
        details = f" round={message.round} {'commit' if message.commit else 'abort'}"
    elif isinstance(message, Decision):
        details = " commit" if message.commit else " abort"
        if message.ts is not None:
            details += f" ts={message.ts}"
    elif isinstance(message, (SnapshotRead, SnapshotReadReply)):
        details = f" ts={message.ts}"
    elif isinstance(message, StateRequest):
        details = f" round={message.round}"
    elif isinstance(message, StateReply):
        details = f" round={message.round} {message.state} accepted={message.accepted_round}"
    return f"{name} {message.txn}{details}"
