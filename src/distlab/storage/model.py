"""The values the stores hold. They are the storage layer's own types: the runtime converts
between them and a protocol core's messages, so storage never depends on a protocol."""

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One replicated-log entry: `kind` tells the engine how to read `data`."""

    term: int
    index: int
    kind: int
    data: bytes

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ValueError(f"log indexes start at 1, not {self.index}")
        if self.term < 0:
            raise ValueError(f"a term is never negative, not {self.term}")
        if not 0 <= self.kind < 2**32:
            raise ValueError(f"entry kind {self.kind} is outside 0..2**32-1")


@dataclass(frozen=True, slots=True)
class StableState:
    """What a node must remember across restarts besides its log.

    `voted_for` is 0 (`distlab.core.NO_NODE`) when no vote was cast in `current_term`.
    """

    current_term: int = 0
    voted_for: int = 0
    commit_index: int = 0

    def __post_init__(self) -> None:
        for name in ("current_term", "voted_for", "commit_index"):
            value = getattr(self, name)
            if not 0 <= value < 2**64:
                raise ValueError(f"{name} {value} is outside 0..2**64-1")


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot covers: the log up to `last_index` (of `last_term`), and the
    membership in force at that point. `size` and `checksum` (CRC-32) describe the data."""

    last_index: int
    last_term: int
    voters: tuple[int, ...]
    learners: tuple[int, ...]
    size: int
    checksum: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot's metadata and the state machine's serialized state."""

    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one fsync of a shared log made durable.

    `records` and `groups` count what became durable since the previous report: records a
    segment rollover fsynced on its own are reported with the next sync.
    """

    durable_seq: int
    records: int
    groups: tuple[int, ...]
    seconds: float


@dataclass(slots=True)
class SyncStats:
    """Running totals of a shared log's fsyncs, for metrics.

    `groups` sums, over all fsyncs, the number of groups each one covered, so
    `groups / fsyncs` is how many groups an fsync served on average.
    """

    fsyncs: int = 0
    records: int = 0
    groups: int = 0
    last: SyncReport | None = None

    def count(self, report: SyncReport) -> None:
        self.fsyncs += 1
        self.records += report.records
        self.groups += len(report.groups)
        self.last = report


class PaxosRecordKind(enum.IntEnum):
    """What a Multi-Paxos record of the shared log holds (its body is the engine's)."""

    PROMISE = 1  # the acceptor's promised ballot; the latest replaces every earlier one
    ACCEPT = 2  # accepted (slot, ballot, value) triples; a later one for a slot replaces it
    DECIDE = 3  # decided slots
    COMPACT = 4  # a durable snapshot covers every slot up to `slot`


@dataclass(frozen=True, slots=True)
class PaxosRecord:
    """One Multi-Paxos record of a group: `slot` is the highest slot it names (0 for a
    promise; for a compaction, the slot the snapshot covers), which is what decides when the
    log may drop it; the body is opaque here."""

    kind: PaxosRecordKind
    slot: int
    body: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.slot < 2**64:
            raise ValueError(f"slot {self.slot} is out of range")
