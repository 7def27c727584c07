"""What makes a peer message well-formed, checked before the core acts on it.

A message that fails is the sender's fault: the core counts it and drops it, never crashes.
"""

from __future__ import annotations

from collections.abc import Iterable

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos.messages import (
    MESSAGE_TYPES,
    Accept,
    AcceptedReply,
    Ballot,
    CatchUp,
    Commit,
    CommitReply,
    Decision,
    Decisions,
    InstallSnapshot,
    Message,
    Prepare,
    Promise,
    Value,
)


def _ballot_problem(ballot: object, voters: frozenset[NodeId]) -> str | None:
    if not isinstance(ballot, Ballot):
        return f"ballot {ballot!r} is not a Ballot"
    if not isinstance(ballot.round, int) or ballot.round < 0:
        return f"ballot round {ballot.round!r} is not a natural number"
    if ballot.round == 0 and ballot.node == 0:
        return None
    if ballot.node not in voters:
        return f"ballot {ballot.describe()} names no member"
    return None


def _value_problem(value: object, voters: frozenset[NodeId]) -> str | None:
    if not isinstance(value, Value):
        return f"value {value!r} is not a Value"
    command: object = value.command
    if command is not None and not isinstance(command, bytes):
        return "a command is bytes"
    return _ballot_problem(value.origin, voters)


def _slots_problem(slots: Iterable[int]) -> str | None:
    previous = 0
    for slot in slots:
        if not isinstance(slot, int) or slot <= previous:
            return f"slots must be positive and ascending, got {slot!r} after {previous}"
        previous = slot
    return None


def _decisions_problem(decisions: Iterable[Decision], voters: frozenset[NodeId]) -> str | None:
    decisions = tuple(decisions)
    if any(not isinstance(decision, Decision) for decision in decisions):
        return "a batch holds something that is not a slot and value"
    problem = _slots_problem(decision.slot for decision in decisions)
    for decision in decisions:
        problem = problem or _value_problem(decision.value, voters)
    return problem


def problem_with(received: object, self_id: NodeId, voters: frozenset[NodeId]) -> str | None:
    """Why `received` cannot be acted on, or None if it is a well-formed message."""
    if not isinstance(received, MESSAGE_TYPES):
        return f"not a Multi-Paxos message: {type(received).__name__}"
    message: Message = received
    if message.recipient != self_id:
        return f"addressed to n{message.recipient}, not n{self_id}"
    if message.sender == self_id or message.sender not in voters:
        return f"from n{message.sender}, not another member"
    problem = _ballot_problem(message.ballot, voters)
    if problem is not None:
        return problem
    match message:
        case Prepare() | Accept() | Commit():
            if message.ballot.node != message.sender:
                return f"n{message.sender} speaks for ballot {message.ballot.describe()}"
    match message:
        case Prepare() | CatchUp():
            if message.first_slot < 1:
                return f"first slot {message.first_slot} is not positive"
        case Promise():
            problem = _ballot_problem(message.promised, voters)
            if (problem is None and message.ok and not message.probe
                    and message.promised != message.ballot):
                problem = "a granted promise holds another ballot"
            if problem is None and message.log_start < 0:
                problem = "a negative log start"
            if problem is None:
                problem = _slots_problem(triple.slot for triple in message.accepted)
            for triple in message.accepted:
                problem = (problem or _ballot_problem(triple.ballot, voters)
                           or _value_problem(triple.value, voters))
                if problem is None and triple.ballot > message.ballot:
                    problem = f"slot {triple.slot} accepted at a ballot above the promise"
            return problem
        case Accept():
            if min(message.commit_index, message.forget_through) < 0:
                return "negative indexes"
            if message.leader_start < 1:
                return "the leader's first slot is not positive"
            return _decisions_problem(message.entries, voters)
        case AcceptedReply():
            return (_ballot_problem(message.promised, voters)
                    or _slots_problem(message.slots)
                    or ("negative indexes" if min(message.applied, message.commit_index) < 0
                        else None))
        case Commit():
            if min(message.commit_index, message.forget_through, message.read_round) < 0:
                return "negative indexes"
            if message.leader_start < 1:
                return "the leader's first slot is not positive"
        case CommitReply():
            return _ballot_problem(message.promised, voters)
        case Decisions():
            return _decisions_problem(message.decisions, voters)
        case InstallSnapshot():
            if message.snapshot.meta.last_index < 1:
                return "a snapshot of no slot"
    return None
