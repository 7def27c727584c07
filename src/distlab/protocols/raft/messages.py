"""What Raft peers say to each other, and what the log is made of.

Every message is a frozen, slotted dataclass carrying `term`, `sender` and `recipient`, so a
transport can route it without knowing what it means. Requests and their replies are separate
types; the simulator and the RPC layer both classify them with `is_request`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distlab.core.ids import NodeId


class EntryKind(enum.IntEnum):
    """What an entry asks the replicated state machine to do."""

    NORMAL = 0  # a client command, opaque to Raft
    NOOP = 1  # appended by a new leader so that it can commit entries of its term
    CONFIG = 2  # a membership change; `data` is an encoded `Membership`


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    kind: EntryKind
    data: bytes

    @property
    def command(self) -> bytes | None:
        """The client command this entry carries: a NORMAL entry's data, if it has any."""
        return self.data if self.kind is EntryKind.NORMAL and self.data else None


@dataclass(frozen=True, slots=True)
class Membership:
    """Who votes and who only receives the log.

    Learners are members being brought up to date before they are promoted to voters; they
    never vote and never count towards a quorum.
    """

    voters: frozenset[NodeId]
    learners: frozenset[NodeId] = frozenset()

    def __post_init__(self) -> None:
        if self.voters & self.learners:
            raise ValueError("a member is either a voter or a learner, not both")

    @property
    def members(self) -> frozenset[NodeId]:
        return self.voters | self.learners

    def encode(self) -> bytes:
        voters = ",".join(str(n) for n in sorted(self.voters))
        learners = ",".join(str(n) for n in sorted(self.learners))
        return f"voters={voters};learners={learners}".encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Membership:
        """Parses `encode`'s output; raises ValueError on anything else."""
        try:
            voters_part, learners_part = data.decode("ascii").split(";")
            voters_key, voters_text = voters_part.split("=")
            learners_key, learners_text = learners_part.split("=")
        except (UnicodeDecodeError, ValueError) as error:
            raise ValueError(f"not an encoded membership: {data!r}") from error
        if voters_key != "voters" or learners_key != "learners":
            raise ValueError(f"not an encoded membership: {data!r}")
        return cls(_parse_ids(voters_text), _parse_ids(learners_text))

    def describe(self) -> str:
        voters = ",".join(f"n{n}" for n in sorted(self.voters))
        learners = ",".join(f"n{n}" for n in sorted(self.learners))
        return f"voters=[{voters}] learners=[{learners}]"


def _parse_ids(text: str) -> frozenset[NodeId]:
    if not text:
        return frozenset()
    ids = [int(part) for part in text.split(",")]
    if any(node <= 0 for node in ids):
        raise ValueError(f"node ids are positive: {text!r}")
    return frozenset(NodeId(node) for node in ids)


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot replaces: the log up to `last_index`, and the membership at that point."""

    last_index: int
    last_term: int
    membership: Membership


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta
    data: bytes  # the state machine's serialized state, opaque to Raft


# --- elections ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestVote:
    """Asks for a vote (or, with `pre_vote`, whether a vote would be granted).

    A pre-vote carries the term the sender would campaign in, without having moved to it, so
    a node cut off from the cluster cannot inflate terms and disrupt a working leader when it
    returns. `transfer` marks a campaign started by TimeoutNow: voters grant it even while
    they believe a leader is alive.
    """

    term: int
    sender: NodeId
    recipient: NodeId
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteReply:
    term: int
    sender: NodeId
    recipient: NodeId
    granted: bool
    pre_vote: bool = False


# --- replication --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Entries after `prev_log_index`, and the leader's commit index.

    `read_round` is the leader's latest ReadIndex round when it sent the message; the
    reply echoes it, so a reply proves the sender was still leader at that round.
    """

    term: int
    sender: NodeId
    recipient: NodeId
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    read_round: int = 0

    @property
    def last_entry_index(self) -> int | None:
        """The index of the last entry carried (a driver joins it to that entry's trace)."""
        return self.entries[-1].index if self.entries else None


@dataclass(frozen=True, slots=True)
class AppendEntriesReply:
    """Success with the index the follower now matches, or a rejection with a hint.

    On rejection `conflict_term` is the term of the follower's entry at the probed index
    (0 if its log is shorter) and `conflict_index` the first index the follower holds with
    that term (or its last index + 1), so the leader can skip a whole term per round trip.
    `rejected_index` is the probed `prev_log_index`; the leader uses it to spot stale replies.
    """

    term: int
    sender: NodeId
    recipient: NodeId
    success: bool
    match_index: int = 0
    rejected_index: int = 0
    conflict_term: int = 0
    conflict_index: int = 0
    read_round: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Keeps followers from campaigning and carries commit and ReadIndex rounds.

    `commit` is capped at what the leader knows the follower matches, so a follower never
    commits an entry of its log that the leader has not confirmed.
    """

    term: int
    sender: NodeId
    recipient: NodeId
    commit: int
    read_round: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    term: int
    sender: NodeId
    recipient: NodeId
    read_round: int = 0
    last_log_index: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    term: int
    sender: NodeId
    recipient: NodeId
    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class InstallSnapshotReply:
    """`match_index`: the index up to which the follower's log now matches the leader's."""

    term: int
    sender: NodeId
    recipient: NodeId
    match_index: int


# --- leadership transfer ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Tells an up-to-date follower to campaign at once, skipping pre-vote."""

    term: int
    sender: NodeId
    recipient: NodeId


Message = (
    RequestVote
    | RequestVoteReply
    | AppendEntries
    | AppendEntriesReply
    | Heartbeat
    | HeartbeatReply
    | InstallSnapshot
    | InstallSnapshotReply
    | TimeoutNow
)

REQUEST_TYPES: tuple[type, ...] = (
    RequestVote,
    AppendEntries,
    Heartbeat,
    InstallSnapshot,
    TimeoutNow,
)


def is_request(message: Message) -> bool:
    """Requests start an exchange; replies answer one. Transports may treat them apart."""
    return isinstance(message, REQUEST_TYPES)


def describe(message: Message) -> str:
    """One short human-readable line, for traces and logs."""
    match message:
        case RequestVote():
            kind = "PreVote" if message.pre_vote else "RequestVote"
            extra = ", transfer" if message.transfer else ""
            return (
                f"{kind}(term={message.term}, last={message.last_log_index}/"
                f"{message.last_log_term}{extra})"
            )
        case RequestVoteReply():
            kind = "PreVoteReply" if message.pre_vote else "RequestVoteReply"
            return f"{kind}(term={message.term}, granted={message.granted})"
        case AppendEntries():
            return (
                f"AppendEntries(term={message.term}, prev={message.prev_log_index}/"
                f"{message.prev_log_term}, n={len(message.entries)}, "
                f"commit={message.leader_commit})"
            )
        case AppendEntriesReply():
            if message.success:
                return f"AppendEntriesReply(term={message.term}, ok, match={message.match_index})"
            return (
                f"AppendEntriesReply(term={message.term}, reject={message.rejected_index}, "
                f"hint={message.conflict_index}/{message.conflict_term})"
            )
        case Heartbeat():
            return (
                f"Heartbeat(term={message.term}, commit={message.commit}, "
                f"read={message.read_round})"
            )
        case HeartbeatReply():
            return f"HeartbeatReply(term={message.term}, read={message.read_round})"
        case InstallSnapshot():
            return (
                f"InstallSnapshot(term={message.term}, last={message.meta.last_index}/"
                f"{message.meta.last_term}, bytes={len(message.data)})"
            )
        case InstallSnapshotReply():
            return f"InstallSnapshotReply(term={message.term}, match={message.match_index})"
        case TimeoutNow():
            return f"TimeoutNow(term={message.term})"
