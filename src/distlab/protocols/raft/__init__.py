"""Raft consensus as a sans-I/O core.

Drive a `Raft` with `tick()`, `step(message)` and requests (`propose`, `read_index`,
`transfer_leadership`, `add_member`, `remove_member`, `compact`); take its output with
`ready()`, persist, send and apply it in that order, then call `advance()`.
"""

from distlab.protocols.raft.config import Config, RandomSource
from distlab.protocols.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Membership,
    Message,
    RequestVote,
    RequestVoteReply,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
    describe,
    is_request,
)
from distlab.protocols.raft.raft import Raft
from distlab.protocols.raft.replication import Proposal
from distlab.protocols.raft.state import HardState, ReadState, Ready, Role, Status
from distlab.protocols.raft.storage import MemoryStorage, Storage

__all__ = [
    "AppendEntries",
    "AppendEntriesReply",
    "Config",
    "Entry",
    "EntryKind",
    "HardState",
    "Heartbeat",
    "HeartbeatReply",
    "InstallSnapshot",
    "InstallSnapshotReply",
    "Membership",
    "MemoryStorage",
    "Message",
    "Proposal",
    "Raft",
    "RandomSource",
    "ReadState",
    "Ready",
    "RequestVote",
    "RequestVoteReply",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "Status",
    "Storage",
    "TimeoutNow",
    "describe",
    "is_request",
]
