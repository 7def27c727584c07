"""A node's transaction configuration, the timeouts (in ticks) and what a Ready holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from distlab.core.ids import NodeId
from distlab.protocols.txn.bugs import PlantedBugs
from distlab.protocols.txn.messages import Message
from distlab.protocols.txn.records import LogRecord


class TxnStore(Protocol):
    """What a participant reads its data through and writes its commits to (a dict will do)."""

    def get(self, key: str, /) -> str | None: ...

    def update(self, writes: Iterable[tuple[str, str]], /) -> None: ...


class VersionedStore(Protocol):
    """A participant's versions by commit timestamp (MVCC), with timestamps: the newest at
    or below `ts` (snapshot reads), and a commit's writes at `ts` (until its record applies)."""

    def read_at(self, key: str, ts: int, /) -> str | None: ...

    def commit_at(self, writes: Iterable[tuple[str, str]], ts: int, /) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Everything is counted in ticks, which the driver feeds."""

    # Retransmit PREPARE, PRE-COMMIT, COMMIT and inquiries this often.
    resend: int = 5
    # The coordinator aborts a transaction whose votes are not all in by then.
    votes: int = 30
    # 3PC: the coordinator leaves the decision to the participants after this long.
    precommit_acks: int = 30
    # A participant gives up waiting for locks (it has not voted: it may abort alone).
    lock_wait: int = 40
    # A participant that voted yes and hears nothing for this long inquires (2PC) or
    # starts the termination protocol (3PC, staggered by its rank among the participants).
    in_doubt: int = 50
    termination_stagger: int = 10
    # A terminator's wait for states, then for acknowledgements of what it proposes.
    collect: int = 20
    predecide: int = 20


@dataclass(frozen=True, slots=True)
class TxnConfig:
    node_id: NodeId
    # Which participant holds a key (each node one shard).
    owner: Callable[[str], NodeId]
    timeouts: Timeouts = Timeouts()
    # What the store holds before any transaction (the simulator's bank accounts).
    initial_data: Mapping[str, str] = field(default_factory=dict)
    # The participant's data, when it lives elsewhere (a consensus group's shard, whose
    # replicated log applies the commits): read with `get`, and `update`d with the writes
    # of a commit at once, before that commit is applied there, so that a transaction
    # evaluated next sees them. None: a store of its own, from `initial_data`.
    store: TxnStore | None = None
    # Spanner's timestamps for 2PC (DESIGN §17): prepare and commit timestamps from TrueTime
    # (which the driver passes in), commit wait, snapshot reads from `versions`.
    timestamps: bool = False
    versions: VersionedStore | None = None
    planted_bugs: PlantedBugs = field(default_factory=PlantedBugs)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the coordinator tells the client that began `txn`."""

    txn: str
    committed: bool
    reason: str = ""
    reads: tuple[tuple[str, str | None], ...] = ()
    # With timestamps: the commit timestamp (or a read-only transaction's read timestamp).
    ts: int | None = None
    # A committed read-write transaction's: it may be reported only once TrueTime is past
    # `ts` (commit wait).
    commit_wait: bool = False


@dataclass(frozen=True, slots=True)
class TxnReady:
    """Force-log `records`, then send `messages`, then report `outcomes`, then advance()."""

    records: tuple[LogRecord, ...] = ()
    messages: tuple[Message, ...] = ()
    outcomes: tuple[Outcome, ...] = ()


@dataclass(slots=True)
class Outbox:
    """What the handlers produce between two Readys."""

    records: list[LogRecord] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.records or self.messages or self.outcomes)


@dataclass(frozen=True, slots=True)
class InDoubt:
    """One unfinished transaction at one node, for `distlab txn status`."""

    txn: str
    role: str  # "participant" or "coordinator"
    state: str
    coordinator: NodeId
    age_ticks: int
    locks: tuple[tuple[str, str], ...]
