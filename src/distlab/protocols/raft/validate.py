"""Checks a peer's message before the core acts on it.

A malformed or impossible message is a fault of the sender: the core rejects and counts it
instead of letting it trip an assertion meant for the core's own mistakes.
"""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.protocols.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    EntryKind,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Membership,
    Message,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)

_KNOWN = (
    RequestVote,
    RequestVoteReply,
    AppendEntries,
    AppendEntriesReply,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    TimeoutNow,
)


def problem_with(message: object, me: NodeId) -> str | None:
    """Why `message` cannot be processed by node `me`, or None if it looks sound."""
    if not isinstance(message, _KNOWN):
        return f"unknown message type {type(message).__name__}"
    if message.recipient != me:
        return f"addressed to n{message.recipient}, not n{me}"
    if message.sender <= 0 or message.sender == me:
        return f"bad sender n{message.sender}"
    if message.term < 0:
        return f"negative term {message.term}"
    return _problem_with_body(message)


def _problem_with_body(message: Message) -> str | None:
    match message:
        case RequestVote():
            if message.last_log_index < 0 or not 0 <= message.last_log_term <= message.term:
                return "vote request with an impossible last entry"
        case AppendEntries():
            return _problem_with_append(message)
        case AppendEntriesReply():
            if min(message.match_index, message.rejected_index, message.conflict_index) < 0:
                return "append reply with a negative index"
        case Heartbeat():
            if message.commit < 0:
                return "heartbeat with a negative commit index"
        case InstallSnapshot():
            meta = message.meta
            if meta.last_index < 1 or not 0 < meta.last_term <= message.term:
                return "snapshot with an impossible last entry"
            if not meta.membership.voters:
                return "snapshot with no voters"
        case InstallSnapshotReply() | HeartbeatReply() | RequestVoteReply() | TimeoutNow():
            pass
    return None


def _problem_with_append(message: AppendEntries) -> str | None:
    if message.prev_log_index < 0 or not 0 <= message.prev_log_term <= message.term:
        return "append with an impossible previous entry"
    if message.leader_commit < 0:
        return "append with a negative commit index"
    expected_index = message.prev_log_index + 1
    previous_term = message.prev_log_term
    for entry in message.entries:
        if entry.index != expected_index:
            return f"append entries not contiguous at {entry.index}"
        if not previous_term <= entry.term <= message.term:
            return f"append entry {entry.index} has term {entry.term} out of order"
        kind: object = entry.kind  # decoded from the wire: trust no field's type
        data: object = entry.data
        if not isinstance(kind, EntryKind) or not isinstance(data, bytes):
            return f"append entry {entry.index} is malformed"
        if entry.kind is EntryKind.CONFIG:
            try:
                membership = Membership.decode(entry.data)
            except ValueError:
                return f"append entry {entry.index} is not a valid membership"
            if not membership.voters:
                return f"append entry {entry.index} leaves no voters"
        expected_index += 1
        previous_term = entry.term
    return None
