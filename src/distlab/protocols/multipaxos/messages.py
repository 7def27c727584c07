"""What Multi-Paxos members say to each other, and what a slot holds.

Every message is a frozen, slotted dataclass carrying `sender` and `recipient` (so a transport
routes it without knowing what it means) and the `ballot` it speaks for. Requests and their
replies are separate types; `is_request` tells them apart.

The names follow Paxos Made Moderately Complex: a leader's scout sends `Prepare` (phase 1a)
and collects `Promise`s (1b); its commanders send `Accept` (2a) and collect `Accepted` (2b).
Decisions ride on the next `Accept`, or on a `Commit` when the leader is idle; a replica that
misses decisions asks with `CatchUp` and is answered with `Decisions` or `InstallSnapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NO_NODE, NodeId


@dataclass(frozen=True, slots=True, order=True)
class Ballot:
    """A ballot number: (round, node), ordered lexicographically, so two leaders never share one."""

    round: int = 0
    node: NodeId = NO_NODE

    def as_int(self) -> int:
        """One integer with the same order, for interfaces that speak of a term."""
        return (self.round << 32) | self.node

    def describe(self) -> str:
        return f"{self.round}.{self.node}"


ZERO_BALLOT = Ballot()


@dataclass(frozen=True, slots=True)
class Value:
    """What a slot decides: a client command, or a no-op (None) that fills a hole.

    `origin` is the ballot under which the command was first proposed. A new leader that
    re-proposes it keeps its origin, so the proposer can tell its own command from another
    one that landed in the same slot.
    """

    command: bytes | None
    origin: Ballot

    @property
    def is_noop(self) -> bool:
        return self.command is None


@dataclass(frozen=True, slots=True)
class Accepted:
    """An acceptor's (ballot, slot, value) triple: durable before it is acknowledged."""

    slot: int
    ballot: Ballot
    value: Value


@dataclass(frozen=True, slots=True)
class Decision:
    """A slot's chosen value, as a replica learned it."""

    slot: int
    value: Value


@dataclass(frozen=True, slots=True)
class Entry:
    """A decided slot handed to the driver to apply (the `CommittedEntry` of core/consensus).

    `term` is the value's origin ballot as one integer: a proposal made under that ballot in
    this slot is this command.
    """

    index: int
    term: int
    command: bytes | None


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    last_index: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine as of `meta.last_index`: every slot up to it decided and applied."""

    meta: SnapshotMeta
    data: bytes


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Prepare:
    """Phase 1a, once for every slot from `first_slot` on (the leader's first undecided).

    A `probe` changes nothing at the acceptor: it asks whether the acceptor would promise
    `ballot` (it holds a lower one and hears no leader), so that a member cut off for a while
    raises no ballot, and deposes no working leader when it comes back (Raft's pre-vote).
    """

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    first_slot: int
    probe: bool = False


@dataclass(frozen=True, slots=True)
class Promise:
    """Phase 1b. `ok`: the acceptor promised `ballot` and reports what it accepted from
    `first_slot` on; otherwise `promised` is the ballot it holds instead.

    `log_start`: slots up to it are decided and the acceptor dropped them (a snapshot, or
    every replica applied them); it reports nothing for them.
    """

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    ok: bool
    promised: Ballot
    accepted: tuple[Accepted, ...] = ()
    log_start: int = 0
    probe: bool = False  # answers a probe: `ok` says it would promise


@dataclass(frozen=True, slots=True)
class Accept:
    """Phase 2a for a batch of slots, with the leader's decisions piggybacked.

    `commit_index`: every slot up to it is decided at the leader; `leader_start` is the first
    slot this ballot proposes in, so a slot at or after it that the recipient accepted under
    this very ballot holds the decided value. `forget_through`: every member has applied up
    to it (the lab's Min), so those slots may be freed.
    """

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    entries: tuple[Decision, ...]
    commit_index: int
    leader_start: int
    forget_through: int

    @property
    def last_entry_index(self) -> int:
        """The last slot it carries (0 for none): the driver makes the message a child of
        that proposal's trace span, as it does for Raft's appends."""
        return self.entries[-1].slot if self.entries else 0


@dataclass(frozen=True, slots=True)
class AcceptedReply:
    """Phase 2b: `ok` for every slot of `slots`; otherwise the acceptor holds `promised`."""

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    ok: bool
    promised: Ballot
    slots: tuple[int, ...]
    applied: int
    commit_index: int


@dataclass(frozen=True, slots=True)
class Commit:
    """The idle leader's heartbeat: its decisions, its Min, and a read-barrier round."""

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    commit_index: int
    leader_start: int
    forget_through: int
    read_round: int = 0


@dataclass(frozen=True, slots=True)
class CommitReply:
    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    ok: bool
    promised: Ballot
    applied: int
    commit_index: int
    read_round: int = 0


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A replica missing decisions from `first_slot` on asks a peer for them."""

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    first_slot: int


@dataclass(frozen=True, slots=True)
class Decisions:
    """Decided slots, answering a `CatchUp`."""

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    decisions: tuple[Decision, ...]


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Answers a `CatchUp` for slots the peer no longer holds."""

    sender: NodeId
    recipient: NodeId
    ballot: Ballot
    snapshot: Snapshot


Message = (
    Prepare | Promise | Accept | AcceptedReply | Commit | CommitReply | CatchUp | Decisions
    | InstallSnapshot
)

REQUEST_TYPES = (Prepare, Accept, Commit, CatchUp, InstallSnapshot)
MESSAGE_TYPES = (
    Prepare, Promise, Accept, AcceptedReply, Commit, CommitReply, CatchUp, Decisions,
    InstallSnapshot,
)


def is_request(message: Message) -> bool:
    """Requests start an exchange; replies answer one. Transports may treat them apart."""
    return isinstance(message, REQUEST_TYPES)


def describe(message: Message) -> str:
    """One short human-readable line, for traces and logs."""
    ballot = message.ballot.describe()
    match message:
        case Prepare():
            kind = "Probe" if message.probe else "Prepare"
            return f"{kind}(b={ballot}, from={message.first_slot})"
        case Promise():
            if message.probe:
                return f"ProbeReply(b={ballot}, {'yes' if message.ok else 'no'})"
            if not message.ok:
                return f"Promise(b={ballot}, refused, holds {message.promised.describe()})"
            return (f"Promise(b={ballot}, {len(message.accepted)} accepted, "
                    f"start={message.log_start})")
        case Accept():
            slots = [decision.slot for decision in message.entries]
            span = f"{slots[0]}..{slots[-1]}" if slots else "none"
            return (f"Accept(b={ballot}, slots={span}, commit={message.commit_index}, "
                    f"min={message.forget_through})")
        case AcceptedReply():
            outcome = "ok" if message.ok else f"refused, holds {message.promised.describe()}"
            return f"Accepted(b={ballot}, {len(message.slots)} slots, {outcome})"
        case Commit():
            return (f"Commit(b={ballot}, commit={message.commit_index}, "
                    f"read={message.read_round})")
        case CommitReply():
            outcome = "ok" if message.ok else f"refused, holds {message.promised.describe()}"
            return f"CommitReply(b={ballot}, {outcome}, applied={message.applied})"
        case CatchUp():
            return f"CatchUp(from={message.first_slot})"
        case Decisions():
            return f"Decisions({len(message.decisions)})"
        case InstallSnapshot():
            meta = message.snapshot.meta
            return f"InstallSnapshot(last={meta.last_index}, {len(message.snapshot.data)} B)"
    raise TypeError(f"not a Multi-Paxos message: {message!r}")
