"""The driver-facing methods of `ConsensusCore` that the Raft core does not offer yet.

Temporary: this module goes away once `Raft` and `Entry` carry these themselves.
"""

from __future__ import annotations

from typing import Any

from distlab.core.ids import NodeId
from distlab.core.status import EngineStatus
from distlab.protocols.raft import (
    AppendEntries,
    Entry,
    EntryKind,
    Heartbeat,
    InstallSnapshot,
    Raft,
    Role,
    TimeoutNow,
)
from distlab.protocols.raft.progress import ProgressState

_LEADER_OUTBOUND = (AppendEntries, Heartbeat, InstallSnapshot, TimeoutNow)


def _command(entry: Entry) -> bytes | None:
    return entry.data if entry.kind is EntryKind.NORMAL else None


if not hasattr(Entry, "command"):
    Entry.command = property(_command)  # type: ignore[attr-defined]


class DriverCoreMixin:
    """Adds to `Raft` what the generic driver calls, where `Raft` lacks it."""

    def engine_status(self: Any) -> EngineStatus:
        return EngineStatus(role=self.role.value, term=self.term, leader_id=self.leader_id,
                            commit_index=self.log.committed, applied_index=self.log.applied)

    def is_leader(self: Any) -> bool:
        return self.role is Role.LEADER

    def last_log_index(self: Any) -> int:
        return int(self.log.last_index())

    def snapshot_index(self: Any) -> int:
        return int(self.log.snapshot_index)

    def sends_before_persist(self: Any, message: Any) -> bool:
        return isinstance(message, _LEADER_OUTBOUND)

    def report_unreachable(self: Any, peer: NodeId) -> None:
        progress = self.progress.get(peer) if self.role is Role.LEADER else None
        if progress is not None and progress.state is ProgressState.REPLICATE:
            progress.become_probe()

    def report_snapshot(self: Any, peer: NodeId, succeeded: bool) -> None:
        progress = self.progress.get(peer) if self.role is Role.LEADER else None
        if progress is not None and progress.state is ProgressState.SNAPSHOT and not succeeded:
            progress.become_probe()


def missing_driver_methods() -> bool:
    return not all(hasattr(Raft, name) for name in (
        "engine_status", "is_leader", "last_log_index", "snapshot_index",
        "sends_before_persist", "report_unreachable", "report_snapshot"))
