"""Raft consensus as a sans-I/O core.

Drive a `Raft` with `tick()`, `step(message)`, requests (`propose`, `read_index`,
`transfer_leadership`, `add_member`, `remove_member`, `compact`) and the transport's reports
(`report_unreachable`, `report_snapshot`); take its output with `ready()`, persist, send and
apply it in that order (`sends_before_persist` names the messages that may leave before the
persist), then call `advance()`.

`BUG_CATALOGUE` lists the known mistakes `Config.planted_bugs` can plant in the core, for a
simulator to prove that it finds them.
"""

from distlab.protocols.raft.bugs import CATALOGUE as BUG_CATALOGUE
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
    "BUG_CATALOGUE",
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
