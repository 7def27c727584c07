"""What a consensus core offers the generic driver, whichever protocol it runs.

A core is sans-I/O (DESIGN §3): it is driven by `tick()`, `step(message)` and requests, and
its output is a `Ready` that the driver persists, sends and applies, in that order, before
calling `advance()`. Raft implements this today; Multi-Paxos implements the same, so one
driver, one storage port and one transport port serve every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from distlab.core.ids import NodeId
from distlab.core.status import EngineStatus


class Proposal(Protocol):
    """Where an accepted command sits in the log: it succeeded only if it commits there."""

    @property
    def index(self) -> int: ...

    @property
    def term(self) -> int: ...


class CommittedEntry(Protocol):
    """One committed log position; `command` is None for the engine's own entries."""

    @property
    def index(self) -> int: ...

    @property
    def term(self) -> int: ...

    @property
    def command(self) -> bytes | None: ...


class ReadState(Protocol):
    """The answer to a read barrier: reads are safe once `index` is applied, if `ok`."""

    @property
    def context(self) -> bytes: ...

    @property
    def index(self) -> int: ...

    @property
    def ok(self) -> bool: ...


class SnapshotMeta(Protocol):
    @property
    def last_index(self) -> int: ...


class Snapshot(Protocol):
    @property
    def meta(self) -> SnapshotMeta: ...

    @property
    def data(self) -> bytes: ...


class Ready(Protocol):
    """Everything the driver must do before `advance()`: persist, send, apply, serve reads."""

    @property
    def snapshot(self) -> Any: ...

    @property
    def messages(self) -> Sequence[Any]: ...

    @property
    def committed_entries(self) -> Sequence[CommittedEntry]: ...

    @property
    def read_states(self) -> Sequence[ReadState]: ...


class ConsensusCore(Protocol):
    """The driver's view of a sans-I/O consensus core."""

    def tick(self) -> None: ...

    def step(self, message: Any) -> None: ...

    def propose_batch(self, commands: list[bytes]) -> Sequence[Proposal]:
        """Append `commands` if this member leads; the empty list if it does not."""
        ...

    def read_index(self, context: bytes) -> bool:
        """Start a read barrier answered by a `ReadState` carrying `context`; False when
        this member cannot serve one now (not the leader)."""
        ...

    def has_ready(self) -> bool:
        """Whether `ready()` has anything to do. A pure query."""
        ...

    def ready(self) -> Ready: ...

    def advance(self) -> None: ...

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Take a snapshot whose state is `data` as of `index`, and drop the log it covers."""
        ...

    def engine_status(self) -> EngineStatus:
        """Role, term, leader and indexes; cheap enough to call after every input batch."""
        ...

    def is_leader(self) -> bool: ...

    def last_log_index(self) -> int: ...

    def known_committed(self) -> int:
        """The highest log index known committed, as of the last input (a pure query)."""
        ...

    def snapshot_index(self) -> int: ...

    def sends_before_persist(self, message: Any) -> bool:
        """Whether `message` may leave before the same Ready is durable (a leader's own
        appends, which acknowledge nothing); replies and votes always wait for the disk."""
        ...

    def report_unreachable(self, peer: NodeId) -> None:
        """The transport lost its connection to `peer`: stop streaming into it."""
        ...

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        """A snapshot send to `peer` finished (or failed)."""
        ...
