"""The coordinator: sends PREPARE, counts votes, decides, and sees the decision through.

2PC with presumed abort: nothing is logged before the vote; a no vote or a missing one
aborts, with no record and no acknowledgements (a participant that asks about a transaction
the coordinator has no record of is told it aborted). Every yes: COMMIT is forced to the log
before it is sent (the Ready contract: the record is durable before the message leaves),
sent again until every participant acknowledges, then END is logged and the transaction
forgotten. 3PC puts PRE-COMMIT in between (round 0 of the termination protocol's rounds):
COMMIT only once every participant has accepted it; when their acknowledgements do not all
come, the coordinator leaves the decision to the participants' termination protocol and
learns it from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distlab.core.ids import NodeId
from distlab.protocols.txn.config import InDoubt, Outbox, Outcome, TxnConfig
from distlab.protocols.txn.locks import Priority
from distlab.protocols.txn.messages import (
    COORDINATOR_ROUND,
    Decision,
    DecisionAck,
    Inquire,
    Message,
    PreDecide,
    PreDecideAck,
    Prepare,
    Protocol,
    SnapshotRead,
    SnapshotReadReply,
    Vote,
)
from distlab.protocols.txn.ops import Op, group_by_owner
from distlab.protocols.txn.records import LogRecord, RecordKind
from distlab.protocols.txn.stamps import Stamps
from distlab.protocols.txn.states import (
    COORDINATOR_TRANSITIONS,
    CoordinatorEvent,
    CoordinatorState,
    next_coordinator_state,
)

DECIDED_LIMIT = 100_000


@dataclass(slots=True)
class CoordinatorTxn:
    txn: str
    protocol: Protocol
    priority: Priority
    participants: tuple[NodeId, ...]
    shares: dict[NodeId, tuple[Op, ...]]
    state: CoordinatorState = CoordinatorState.COLLECTING
    votes: set[NodeId] = field(default_factory=set)
    reads: dict[str, str | None] = field(default_factory=dict)
    acks: set[NodeId] = field(default_factory=set)
    ticks: int = 0
    age_ticks: int = 0
    # Whether a client waits for the outcome (not for a transaction recovered from the log).
    reporting: bool = True
    # With timestamps: each participant's prepare timestamp, then the commit timestamp.
    prepare_ts: dict[NodeId, int] = field(default_factory=dict)
    ts: int | None = None
    # A read-only transaction: the keys each participant reads at `ts`, without locks.
    read_keys: dict[NodeId, tuple[str, ...]] | None = None

    def move(self, event: CoordinatorEvent) -> None:
        self.state = next_coordinator_state(self.state, event,
                                            self.protocol is Protocol.THREE_PHASE)
        self.ticks = 0


class Coordinator:
    def __init__(self, config: TxnConfig, out: Outbox, stamps: Stamps | None = None) -> None:
        self.config = config
        self.node_id = config.node_id
        self._out = out
        self.stamps = stamps if stamps is not None else Stamps()
        self.txns: dict[str, CoordinatorTxn] = {}
        # Outcomes of finished transactions (an abort is also presumed for the unknown).
        self.decided: dict[str, Outcome] = {}
        self.rejected = 0

    # ------------------------------------------------------------------ recovery

    def recover(self, records: list[LogRecord]) -> None:
        for record in records:
            if record.ts is not None:
                self.stamps.witness(record.ts)
            if record.kind is RecordKind.COORDINATOR_COMMIT:
                self.txns[record.txn] = CoordinatorTxn(
                    record.txn, record.protocol, (0, record.txn), record.participants, {},
                    state=CoordinatorState.COMMITTING, reads=dict(record.reads),
                    reporting=False, ts=record.ts)
            elif record.kind is RecordKind.COORDINATOR_END:
                self.txns.pop(record.txn, None)
                self._remember(Outcome(record.txn, True, reads=record.reads, ts=record.ts,
                                       commit_wait=record.ts is not None))
        for txn in self.txns.values():
            # COMMIT without END: resend it; the participants in doubt are waiting for it.
            self._send_decisions(txn, True)

    # ------------------------------------------------------------------ queries

    def knows(self, txn: str) -> bool:
        return txn in self.txns or txn in self.decided

    def in_doubt(self) -> list[InDoubt]:
        return [InDoubt(txn.txn, "coordinator", txn.state.value, self.node_id,
                        txn.age_ticks, ()) for txn in self.txns.values()]

    # ------------------------------------------------------------------ inputs

    def begin(self, txn_id: str, priority: Priority, ops: tuple[Op, ...],
              protocol: Protocol) -> None:
        """Start coordinating `txn_id`; its outcome comes out of a later Ready. A repeated
        begin of the same id (a client's retry) starts nothing new."""
        known = self.decided.get(txn_id)
        if known is not None:
            self._out.outcomes.append(known)
            return
        known_txn = self.txns.get(txn_id)
        if known_txn is not None:
            # A client waits for it again (its first attempt lost the coordinator it asked).
            known_txn.reporting = True
            if known_txn.state is CoordinatorState.COMMITTING:
                self._report(self._committed(known_txn))
            return
        if not ops:
            self._report(Outcome(txn_id, True))
            return
        shares = {NodeId(node): share
                  for node, share in group_by_owner(ops, self.config.owner).items()}
        txn = CoordinatorTxn(txn_id, protocol, priority, tuple(sorted(shares)), shares)
        self.txns[txn_id] = txn
        self._send_prepares(txn)

    def begin_read(self, txn_id: str, keys: tuple[str, ...], ts: int | None) -> None:
        """Start a read-only transaction: the values of `keys` at `ts` (None: TrueTime's
        `latest` now, Spanner's read-only timestamp), read without locks."""
        known = self.decided.get(txn_id)
        if known is not None:
            self._out.outcomes.append(known)
            return
        if txn_id in self.txns:
            return
        if not self.config.timestamps:
            self._report(Outcome(txn_id, False, "read-only transactions at a timestamp need "
                                 "timestamps (participants groups)"))
            return
        read_ts = ts if ts is not None else self.stamps.now.latest
        shares: dict[NodeId, list[str]] = {}
        for key in keys:
            shares.setdefault(self.config.owner(key), []).append(key)
        if not shares:
            self._report(Outcome(txn_id, True, ts=read_ts))
            return
        txn = CoordinatorTxn(txn_id, Protocol.TWO_PHASE, (0, txn_id), tuple(sorted(shares)),
                             {}, ts=read_ts,
                             read_keys={node: tuple(share) for node, share in shares.items()})
        self.txns[txn_id] = txn
        self._send_snapshot_reads(txn)

    def on_snapshot_read_reply(self, message: SnapshotReadReply) -> None:
        txn = self.txns.get(message.txn)
        if (txn is None or txn.read_keys is None or message.sender not in txn.read_keys
                or message.ts != txn.ts):
            return
        if message.refusal:
            self._abort(txn, f"participant {message.sender}: {message.refusal}")
            return
        txn.votes.add(message.sender)
        txn.reads.update(message.reads)
        if txn.votes == set(txn.participants):
            txn.move(CoordinatorEvent.ALL_READ)
            del self.txns[txn.txn]
            self._finish(txn, Outcome(txn.txn, True, reads=tuple(sorted(txn.reads.items())),
                                      ts=txn.ts))

    def tick(self) -> None:
        timeouts = self.config.timeouts
        for txn in list(self.txns.values()):
            txn.ticks += 1
            txn.age_ticks += 1
            state = txn.state
            if state is CoordinatorState.COLLECTING:
                if txn.ticks >= timeouts.votes:
                    self._abort(txn, "the votes did not all come in time"
                                if txn.read_keys is None else
                                "the snapshot reads did not all come in time")
                elif txn.ticks % timeouts.resend == 0:
                    if txn.read_keys is None:
                        self._send_prepares(txn)
                    else:
                        self._send_snapshot_reads(txn)
            elif state is CoordinatorState.PRECOMMITTING:
                if txn.ticks >= timeouts.precommit_acks:
                    # Those that did not acknowledge may have joined a terminator's round:
                    # the participants decide, and say what.
                    txn.move(CoordinatorEvent.PRECOMMIT_TIMEOUT)
                    txn.acks = set()
                elif txn.ticks % timeouts.resend == 0:
                    self._send_precommits(txn)
            elif state is CoordinatorState.IN_DOUBT and txn.ticks % timeouts.in_doubt == 0:
                # Ask again (round 0 proposes what it always proposed): a participant that
                # has decided answers with the decision, whose broadcast may have been lost.
                self._send_precommits(txn)
            elif state is CoordinatorState.COMMITTING and txn.ticks % timeouts.resend == 0:
                self._send_decisions(txn, True)

    def on_vote(self, message: Vote) -> None:
        txn = self.txns.get(message.txn)
        if txn is None:
            if message.yes and message.protocol is Protocol.TWO_PHASE:
                known = self.decided.get(message.txn)
                # Presumed abort: no record of it means it aborted.
                committed = known is not None and known.committed
                self._send(Decision(self.node_id, message.sender, message.txn, committed,
                                    known.ts if committed and known is not None else None))
            return
        if txn.state is not CoordinatorState.COLLECTING or message.sender not in txn.shares:
            return
        if message.ts is not None:
            txn.prepare_ts[message.sender] = message.ts
        if not message.yes:
            self._abort(txn, message.reason or f"node {message.sender} voted no")
            return
        txn.votes.add(message.sender)
        txn.reads.update(message.reads)
        if txn.votes == set(txn.participants):
            txn.move(CoordinatorEvent.ALL_YES)
            if txn.protocol is Protocol.THREE_PHASE:
                self._send_precommits(txn)
            else:
                if self.config.timestamps:
                    txn.ts = self._commit_timestamp(txn)
                self._commit(txn)

    def on_predecide_ack(self, message: PreDecideAck) -> None:
        txn = self.txns.get(message.txn)
        if (txn is None or txn.state is not CoordinatorState.PRECOMMITTING
                or message.round != COORDINATOR_ROUND or not message.commit):
            return
        txn.acks.add(message.sender)
        if txn.acks == set(txn.participants):
            txn.move(CoordinatorEvent.ALL_PRECOMMITTED)
            self._commit(txn)

    def on_decision_ack(self, message: DecisionAck) -> None:
        txn = self.txns.get(message.txn)
        if txn is None or txn.state is not CoordinatorState.COMMITTING:
            return
        txn.acks.add(message.sender)
        if txn.acks >= set(txn.participants):
            txn.move(CoordinatorEvent.ALL_ACKED)
            if self.config.planted_bugs.commit_before_log:
                self._log_commit(txn)
            outcome = self._committed(txn)
            self._out.records.append(LogRecord(RecordKind.COORDINATOR_END, txn.txn,
                                               reads=outcome.reads, ts=outcome.ts))
            del self.txns[txn.txn]
            self._remember(outcome)

    def on_decision(self, message: Decision) -> None:
        """A 3PC terminator's decision, for a transaction the coordinator gave up deciding."""
        txn = self.txns.get(message.txn)
        if txn is None:
            return
        event = CoordinatorEvent.LEARN_COMMIT if message.commit else CoordinatorEvent.LEARN_ABORT
        if (txn.state, event) not in COORDINATOR_TRANSITIONS:
            if txn.state is not CoordinatorState.COMMITTING or not message.commit:
                self.rejected += 1
            return
        txn.move(event)
        del self.txns[txn.txn]
        self._finish(txn, Outcome(txn.txn, message.commit,
                                  "" if message.commit else "the participants aborted it",
                                  tuple(sorted(txn.reads.items())) if message.commit else ()))

    def on_inquire(self, message: Inquire) -> None:
        txn = self.txns.get(message.txn)
        if txn is not None:
            if txn.state is CoordinatorState.COMMITTING:
                self._send(Decision(self.node_id, message.sender, txn.txn, True, txn.ts))
            return  # still collecting votes: the decision comes when it is made
        known = self.decided.get(message.txn)
        committed = known is not None and known.committed
        self._send(Decision(self.node_id, message.sender, message.txn, committed,
                            known.ts if committed and known is not None else None))

    # ------------------------------------------------------------------ deciding

    def _commit(self, txn: CoordinatorTxn) -> None:
        if not self.config.planted_bugs.commit_before_log:
            self._log_commit(txn)
        txn.acks = set()
        self._send_decisions(txn, True)
        if txn.reporting:
            self._report(self._committed(txn))

    def _commit_timestamp(self, txn: CoordinatorTxn) -> int:
        """Spanner's s: at least TrueTime's `latest` now, at least every participant's
        prepare timestamp, above every timestamp this group assigned before."""
        at_least = self.stamps.now.latest
        if not self.config.planted_bugs.ts_below_prepare:
            at_least = max([at_least, *txn.prepare_ts.values()])
        return self.stamps.next(at_least)

    def _log_commit(self, txn: CoordinatorTxn) -> None:
        self._out.records.append(LogRecord(
            RecordKind.COORDINATOR_COMMIT, txn.txn, participants=txn.participants,
            protocol=txn.protocol, reads=tuple(sorted(txn.reads.items())), ts=txn.ts))

    @staticmethod
    def _committed(txn: CoordinatorTxn) -> Outcome:
        return Outcome(txn.txn, True, reads=tuple(sorted(txn.reads.items())), ts=txn.ts,
                       commit_wait=txn.ts is not None)

    def _abort(self, txn: CoordinatorTxn, reason: str) -> None:
        txn.move(CoordinatorEvent.ABORT)
        del self.txns[txn.txn]
        self._send_decisions(txn, False)
        self._finish(txn, Outcome(txn.txn, False, reason))

    def _finish(self, txn: CoordinatorTxn, outcome: Outcome) -> None:
        self._remember(outcome)
        if txn.reporting:
            self._report(outcome)

    def _report(self, outcome: Outcome) -> None:
        self._out.outcomes.append(outcome)

    def _remember(self, outcome: Outcome) -> None:
        self.decided[outcome.txn] = outcome
        if len(self.decided) > DECIDED_LIMIT:
            del self.decided[next(iter(self.decided))]

    # ------------------------------------------------------------------ sending

    def _send_prepares(self, txn: CoordinatorTxn) -> None:
        for node in txn.participants:
            if node not in txn.votes:
                self._send(Prepare(self.node_id, node, txn.txn, txn.protocol, txn.priority,
                                   txn.shares[node], txn.participants))

    def _send_precommits(self, txn: CoordinatorTxn) -> None:
        for node in txn.participants:
            if node not in txn.acks:
                self._send(PreDecide(self.node_id, node, txn.txn, COORDINATOR_ROUND, True))

    def _send_decisions(self, txn: CoordinatorTxn, commit: bool) -> None:
        if txn.read_keys is not None:
            return  # a read-only transaction: nothing to decide at the participants
        for node in txn.participants:
            if node not in txn.acks:
                self._send(Decision(self.node_id, node, txn.txn, commit,
                                    txn.ts if commit else None))

    def _send_snapshot_reads(self, txn: CoordinatorTxn) -> None:
        assert txn.read_keys is not None and txn.ts is not None
        for node, keys in txn.read_keys.items():
            if node not in txn.votes:
                self._send(SnapshotRead(self.node_id, node, txn.txn, txn.ts, keys))

    def _send(self, message: Message) -> None:
        self._out.messages.append(message)
