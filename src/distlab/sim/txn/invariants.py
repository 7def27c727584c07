"""What must hold of every transaction, checked as the simulated nodes run.

- atomicity: every participant that decides a transaction, and its coordinator, decide the
  same (a participant's decision is its COMMITTED or ABORTED record; the coordinator's, the
  outcome it reports or the COMMIT it logs);
- no commit without every yes vote: nothing commits a transaction before each of its
  participants has sent a yes vote;
- locks held until the outcome: after every Ready, a participant that voted yes and has not
  learned the outcome still holds every lock its PREPARED record names.

Over consensus groups (each group one participant), what every replica applies is checked
too: no two groups apply different outcomes for a transaction, and no group applies a
commit (a participant's COMMITTED, the coordinator's COMMIT) before every participant group
applied its PREPARED.

It also counts the transactions that were in doubt past the timeout: 2PC participants that
had to ask their coordinator (blocked while it is away) and 3PC ones that ran the
termination protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    Inquire,
    LogRecord,
    Prepare,
    RecordKind,
    StateRequest,
    TxnNode,
    TxnReady,
    Vote,
)
from distlab.protocols.txn.states import UNDECIDED_AFTER_YES


class InvariantViolation(AssertionError):
    pass


def node_label(participant: NodeId) -> str:
    return f"n{participant}"


@dataclass(slots=True)
class TxnInvariants:
    participants: dict[str, frozenset[NodeId]] = field(default_factory=dict)
    yes_votes: dict[str, set[NodeId]] = field(default_factory=dict)
    # txn -> who decided ("n2", "coordinator n1") -> committed
    decisions: dict[str, dict[str, bool]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    terminated: set[str] = field(default_factory=set)
    committed: set[str] = field(default_factory=set)
    aborted: set[str] = field(default_factory=set)
    # How a participant is named in a violation: a node ("n2"), or a group ("group 1").
    label: Callable[[NodeId], str] = node_label
    # txn -> the participants whose group applied its PREPARED record
    prepared_applied: dict[str, set[NodeId]] = field(default_factory=dict)

    def node_started(self, node: NodeId, core: TxnNode) -> None:
        self._check_locks(node, core)

    def message_sent(self, node: NodeId, message: object) -> None:
        if isinstance(message, Prepare):
            self.participants.setdefault(message.txn, frozenset(message.participants))
        elif isinstance(message, Vote) and message.yes:
            self.yes_votes.setdefault(message.txn, set()).add(message.sender)
        elif isinstance(message, Inquire):
            self.blocked.add(message.txn)
        elif isinstance(message, StateRequest):
            self.terminated.add(message.txn)

    def after_ready(self, node: NodeId, core: TxnNode, ready: TxnReady) -> None:
        for record in ready.records:
            if record.kind is RecordKind.COMMITTED:
                self._decided(record.txn, self.label(node), True)
            elif record.kind is RecordKind.ABORTED:
                self._decided(record.txn, self.label(node), False)
            elif record.kind is RecordKind.COORDINATOR_COMMIT:
                self._decided(record.txn, f"coordinator {self.label(node)}", True)
        for outcome in ready.outcomes:
            self._decided(outcome.txn, f"coordinator {self.label(node)}", outcome.committed)
        # After the decisions: a vote in this Ready cannot have counted towards them.
        for message in ready.messages:
            self.message_sent(node, message)
        self._check_locks(node, core)

    def record_applied(self, participant: NodeId, record: LogRecord) -> None:
        """A replica of `participant`'s group applied `record` (so the group committed it)."""
        kind, txn = record.kind, record.txn
        if kind is RecordKind.PREPARED:
            self.prepared_applied.setdefault(txn, set()).add(participant)
            self.participants.setdefault(txn, frozenset(record.participants))
        elif kind is RecordKind.COMMITTED:
            self._applied_commit(txn, self.label(participant),
                                 self.participants.get(txn, frozenset({participant})))
        elif kind is RecordKind.ABORTED:
            self._decided(txn, self.label(participant), False)
        elif kind is RecordKind.COORDINATOR_COMMIT:
            self._applied_commit(txn, f"coordinator {self.label(participant)}",
                                 frozenset(record.participants))

    def _applied_commit(self, txn: str, who: str, participants: frozenset[NodeId]) -> None:
        missing = participants - self.prepared_applied.get(txn, set())
        if missing:
            raise InvariantViolation(
                f"transaction {txn}: {who} applied a commit before "
                + ", ".join(self.label(node) for node in sorted(missing))
                + " applied its PREPARED")
        self._decided(txn, who, True)

    def _decided(self, txn: str, who: str, committed: bool) -> None:
        decided = self.decisions.setdefault(txn, {})
        for other, value in decided.items():
            if value != committed:
                raise InvariantViolation(
                    f"atomicity: transaction {txn} {_word(value)} at {other} but "
                    f"{_word(committed)} at {who}")
        decided[who] = committed
        (self.committed if committed else self.aborted).add(txn)
        if committed:
            participants = self.participants.get(txn, frozenset())
            missing = participants - self.yes_votes.get(txn, set())
            if missing:
                raise InvariantViolation(
                    f"transaction {txn} committed at {who} without a yes vote from "
                    + ", ".join(self.label(node) for node in sorted(missing)))

    def _check_locks(self, node: NodeId, core: TxnNode) -> None:
        participant = core.participant
        for txn in participant.txns.values():
            if txn.state not in UNDECIDED_AFTER_YES:
                continue
            for key, mode in txn.locks.items():
                if not participant.locks.holds(txn.txn, key, mode):
                    raise InvariantViolation(
                        f"locks: {self.label(node)} is {txn.state.value} in {txn.txn} but no "
                        f"longer "
                        f"holds its {mode.value} lock on {key!r} (holders: "
                        f"{participant.locks.holders(key) or 'none'})")


def _word(committed: bool) -> str:
    return "committed" if committed else "aborted"
