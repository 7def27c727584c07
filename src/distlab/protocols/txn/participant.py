"""The participant: locks, evaluates and votes; holds its locks until it learns the outcome.

2PC with presumed abort: PREPARED (writes, reads and locks) reaches the disk before the yes
vote leaves; a participant in doubt asks its coordinator again and again, and never decides
alone. 3PC adds PRE-COMMIT and Skeen's termination protocol: a participant in doubt that
hears nothing becomes a terminator in a round of its own, collects the participants' states
and, by Skeen's rules (a decision anywhere stands; else the value accepted in the highest
round; nothing accepted means abort), gets every participant it reached to accept that
value before it decides. A participant that has answered a round ignores proposals of lower
rounds, so an old coordinator cannot precommit behind a terminator's back. A participant
restarted from its log decides only on the states of every participant: it may have missed
rounds while it was down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distlab.core.ids import NodeId
from distlab.protocols.txn.config import InDoubt, Outbox, TxnConfig, TxnStore
from distlab.protocols.txn.locks import Grant, LockTable, Priority
from distlab.protocols.txn.messages import (
    NO_ROUND,
    Decision,
    DecisionAck,
    Inquire,
    Message,
    PreDecide,
    PreDecideAck,
    Prepare,
    Protocol,
    Round,
    SnapshotRead,
    SnapshotReadReply,
    StateReply,
    StateRequest,
    Vote,
)
from distlab.protocols.txn.ops import LockMode, Op, evaluate, lock_modes
from distlab.protocols.txn.records import LogRecord, RecordKind
from distlab.protocols.txn.stamps import Stamps
from distlab.protocols.txn.states import (
    UNDECIDED_AFTER_YES,
    ParticipantEvent,
    ParticipantState,
    next_participant_state,
)

# Finished transactions remembered (to answer duplicates); the oldest are forgotten first.
FINISHED_LIMIT = 100_000


@dataclass(slots=True)
class Termination:
    """This participant's own attempt, in `round`, to decide a 3PC transaction."""

    round: Round
    collecting: bool = True
    ticks: int = 0
    replies: dict[NodeId, StateReply] = field(default_factory=dict)
    value: bool = False
    acks: set[NodeId] = field(default_factory=set)


@dataclass(slots=True)
class ParticipantTxn:
    txn: str
    coordinator: NodeId
    participants: tuple[NodeId, ...]
    protocol: Protocol
    priority: Priority
    ops: tuple[Op, ...]
    state: ParticipantState
    wanted: list[tuple[str, LockMode]] = field(default_factory=list)
    locks: dict[str, LockMode] = field(default_factory=dict)
    writes: tuple[tuple[str, str], ...] = ()
    reads: tuple[tuple[str, str | None], ...] = ()
    idle_ticks: int = 0
    age_ticks: int = 0
    recovered: bool = False
    promised: Round = NO_ROUND
    accepted_round: Round = NO_ROUND
    accepted_commit: bool | None = None
    termination: Termination | None = None
    waited: bool = False
    # With timestamps: the prepare timestamp it voted with.
    prepare_ts: int | None = None

    def move(self, event: ParticipantEvent) -> None:
        self.state = next_participant_state(self.state, event)


class Participant:
    def __init__(self, config: TxnConfig, out: Outbox, stamps: Stamps | None = None) -> None:
        self.config = config
        self.node_id = config.node_id
        self._out = out
        self.stamps = stamps if stamps is not None else Stamps()
        # Snapshot reads waiting for transactions prepared at or below their timestamp.
        self._waiting_reads: list[SnapshotRead] = []
        self.store: TxnStore = (
            config.store if config.store is not None else dict(config.initial_data))
        self.locks = LockTable()
        self.txns: dict[str, ParticipantTxn] = {}
        # txn -> committed, for transactions this participant has finished.
        self.finished: dict[str, bool] = {}
        self._round_counter = 0
        self._waking = False
        # Set: every new transaction is refused with this reason (a participant made to vote
        # no, for experiments).
        self.refusing: str | None = None
        # Messages refused as impossible here (a commit of what never voted yes, ...).
        self.rejected = 0
        # Transactions that had to wait for a lock, and those that lost wait-die.
        self.lock_waits = 0
        self.lock_deaths = 0

    # ------------------------------------------------------------------ recovery

    def recover(self, records: list[LogRecord]) -> None:
        bugs = self.config.planted_bugs
        for record in records:
            kind = record.kind
            if record.ts is not None:
                self.stamps.witness(record.ts)
            if kind is RecordKind.PREPARED:
                txn = ParticipantTxn(
                    record.txn, record.coordinator, record.participants, record.protocol,
                    record.priority, (), ParticipantState.PREPARED, locks=dict(record.locks),
                    writes=record.writes, reads=record.reads, recovered=True,
                    prepare_ts=record.ts)
                self.txns[record.txn] = txn
            elif kind is RecordKind.ROUND:
                recovered = self.txns.get(record.txn)
                if recovered is not None:
                    recovered.promised = record.promised
                    recovered.accepted_round = record.accepted_round
                    recovered.accepted_commit = record.accepted_commit
                    self._round_counter = max(self._round_counter, record.promised[0])
                    if record.accepted_commit is not None:
                        recovered.state = (ParticipantState.PRECOMMITTED if record.accepted_commit
                                           else ParticipantState.PREABORTED)
            elif kind in (RecordKind.COMMITTED, RecordKind.ABORTED):
                committed = kind is RecordKind.COMMITTED
                done = self.txns.pop(record.txn, None)
                if committed and done is not None:
                    self.store.update(done.writes)
                self._remember(record.txn, committed)
        for txn in self.txns.values():
            if not bugs.forget_locks_on_restart:
                self.locks.restore(txn.txn, txn.priority, txn.locks)

    # ------------------------------------------------------------------ queries

    def knows(self, txn: str) -> bool:
        return txn in self.txns or txn in self.finished

    def undecided(self) -> int:
        """Transactions that voted yes here and do not know their outcome yet."""
        return sum(1 for txn in self.txns.values() if txn.state in UNDECIDED_AFTER_YES)

    def in_doubt(self) -> list[InDoubt]:
        return [InDoubt(txn.txn, "participant", txn.state.value, txn.coordinator,
                        txn.age_ticks,
                        tuple(sorted((key, mode.value)
                                     for key, mode in self.locks.held_by(txn.txn).items())))
                for txn in self.txns.values()]

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        timeouts = self.config.timeouts
        for txn in list(self.txns.values()):
            txn.idle_ticks += 1
            txn.age_ticks += 1
            if txn.state is ParticipantState.LOCKING:
                if txn.idle_ticks >= timeouts.lock_wait:
                    self._refuse(txn, "gave up waiting for locks")
                continue
            if txn.protocol is Protocol.TWO_PHASE:
                if txn.idle_ticks >= timeouts.in_doubt:
                    if self.config.planted_bugs.unilateral_abort_after_yes:
                        self._decide(txn, False)
                        continue
                    self._send(Inquire(self.node_id, txn.coordinator, txn.txn))
                    txn.idle_ticks = timeouts.in_doubt - timeouts.resend
                continue
            self._tick_termination(txn)

    def on_prepare(self, message: Prepare) -> None:
        committed = self.finished.get(message.txn)
        if committed is not None:
            self._send(Vote(self.node_id, message.sender, message.txn, message.protocol,
                            committed, "" if committed else "aborted"))
            return
        txn = self.txns.get(message.txn)
        if txn is not None:
            txn.idle_ticks = 0
            if txn.state in UNDECIDED_AFTER_YES:
                self._send(Vote(self.node_id, txn.coordinator, txn.txn, txn.protocol, True,
                                reads=txn.reads, ts=txn.prepare_ts))
            return
        assert self.node_id in message.participants, "PREPARE for a non-participant"
        txn = ParticipantTxn(
            message.txn, message.sender, message.participants, message.protocol,
            message.priority, message.ops, ParticipantState.LOCKING,
            wanted=sorted(lock_modes(message.ops).items()))
        self.txns[txn.txn] = txn
        if self.refusing is not None:
            self._refuse(txn, self.refusing)
            return
        self._acquire(txn)

    def on_decision(self, message: Decision) -> None:
        txn = self.txns.get(message.txn)
        if txn is None:
            committed = self.finished.get(message.txn)
            if committed is None:
                if message.commit:
                    self.rejected += 1  # a commit of a transaction that never voted here
                else:
                    self._remember(message.txn, False)
            elif committed != message.commit:
                self.rejected += 1  # contradicts what was decided here: never undone
            elif committed:
                self._send(DecisionAck(self.node_id, message.sender, message.txn))
            return
        if txn.state is ParticipantState.LOCKING:
            if message.commit:
                self.rejected += 1
                return
            txn.move(ParticipantEvent.ABORT)
            self._release(txn, False)
            return
        self._decide(txn, message.commit, message.ts)

    def on_state_request(self, message: StateRequest) -> None:
        txn = self.txns.get(message.txn)
        if txn is None or txn.state is ParticipantState.LOCKING:
            if txn is not None:
                # It has not voted: it may still refuse, and does, so the terminator aborts.
                self._refuse(txn, "a terminator asked before this participant voted")
            committed = self.finished.get(message.txn)
            if committed is None:
                self._remember(message.txn, False)
            self._send(StateReply(self.node_id, message.sender, message.txn, message.round,
                                  "committed" if committed else "aborted"))
            return
        txn.idle_ticks = 0
        if message.round < txn.promised:
            return  # a lower round than one it answered: that round cannot decide here
        if message.round > txn.promised:
            self._promise(txn, message.round)
        self._send(self._state_reply(txn, message.round, message.sender))

    def on_state_reply(self, message: StateReply) -> None:
        txn = self.txns.get(message.txn)
        if txn is None or txn.termination is None:
            return
        termination = txn.termination
        if not termination.collecting or message.round != termination.round:
            return
        termination.replies[message.sender] = message
        if len(termination.replies) == len(txn.participants):
            self._conclude(txn)

    def on_predecide(self, message: PreDecide) -> None:
        txn = self.txns.get(message.txn)
        if txn is None:
            committed = self.finished.get(message.txn)
            if committed is not None:
                # Decided here already: tell the proposer, who adopts it.
                self._send(Decision(self.node_id, message.sender, message.txn, committed))
            return
        if txn.state not in UNDECIDED_AFTER_YES:
            self.rejected += 1
            return
        txn.idle_ticks = 0
        if message.round < txn.promised:
            return  # fenced: a higher round has been answered
        self._accept(txn, message.round, message.commit)
        if txn.termination is not None and txn.termination.round < message.round:
            txn.termination = None
        self._send(PreDecideAck(self.node_id, message.sender, txn.txn, message.round,
                                message.commit))

    def on_predecide_ack(self, message: PreDecideAck) -> None:
        txn = self.txns.get(message.txn)
        if txn is None or txn.termination is None:
            return
        termination = txn.termination
        if (termination.collecting or message.round != termination.round
                or message.commit != termination.value):
            return
        termination.acks.add(message.sender)
        if termination.acks >= set(termination.replies):
            self._decide_and_tell(txn, termination.value)

    def on_snapshot_read(self, message: SnapshotRead) -> None:
        """Answer once no write at or below the read's timestamp can still come here: promise
        (durably, before the answer leaves) to assign no timestamp at or below it, and wait
        for the transactions prepared at or below it to decide."""
        if not self.config.timestamps or self.config.versions is None:
            self._send(SnapshotReadReply(self.node_id, message.sender, message.txn,
                                         message.ts, refusal="this participant keeps no "
                                         "versions (snapshot reads need groups)"))
            return
        if message.ts > self.stamps.assigned:
            self.stamps.witness(message.ts)
            self._out.records.append(LogRecord(RecordKind.SAFE_TIME, "", ts=message.ts))
        if self._blocks_read(message.ts):
            if len(self._waiting_reads) < FINISHED_LIMIT:
                self._waiting_reads.append(message)
            return
        self._answer_read(message)

    def promise_safe_time(self) -> int | None:
        """Promise TrueTime's `latest` as the safe time, so that replicas can answer reads
        up to it without a write; None when there is nothing to promise (not timestamped, or
        no later than what is promised)."""
        if not self.config.timestamps:
            return None
        ts = self.stamps.now.latest
        if ts <= self.stamps.assigned:
            return None
        self.stamps.witness(ts)
        self._out.records.append(LogRecord(RecordKind.SAFE_TIME, "", ts=ts))
        return ts

    def _blocks_read(self, ts: int) -> bool:
        if self.config.planted_bugs.read_below_safe_time:
            return False
        return any(txn.prepare_ts is not None and txn.prepare_ts <= ts
                   and txn.state in UNDECIDED_AFTER_YES for txn in self.txns.values())

    def _serve_waiting_reads(self) -> None:
        waiting, self._waiting_reads = self._waiting_reads, []
        for message in waiting:
            if self._blocks_read(message.ts):
                self._waiting_reads.append(message)
            else:
                self._answer_read(message)

    def _answer_read(self, message: SnapshotRead) -> None:
        versions = self.config.versions
        assert versions is not None
        try:
            reads = tuple((key, versions.read_at(key, message.ts)) for key in message.keys)
        except ValueError as error:  # below the versions kept
            self._send(SnapshotReadReply(self.node_id, message.sender, message.txn,
                                         message.ts, refusal=str(error)))
            return
        self._send(SnapshotReadReply(self.node_id, message.sender, message.txn, message.ts,
                                     reads))

    # ------------------------------------------------------------------ locking and voting

    def _acquire(self, txn: ParticipantTxn) -> None:
        while txn.wanted:
            key, mode = txn.wanted[0]
            answer = self.locks.request(txn.txn, txn.priority, key, mode)
            if answer.grant is Grant.WAIT:
                if not txn.waited:
                    txn.waited = True
                    self.lock_waits += 1
                return
            if answer.grant is Grant.DIE:
                self.lock_deaths += 1
                self._refuse(txn, f"wait-die: {key} is locked by older "
                                  f"{', '.join(answer.blockers)}")
                return
            txn.wanted.pop(0)
        result = evaluate(txn.ops, self.store.get)
        if not result.ok:
            self._refuse(txn, result.reason)
            return
        txn.writes, txn.reads = result.writes, result.reads
        txn.locks = self.locks.held_by(txn.txn)
        txn.move(ParticipantEvent.VOTE_YES)
        txn.idle_ticks = 0
        if self._timestamped(txn):
            # Above every timestamp this group assigned or promised: no read already
            # answered can miss what this transaction writes.
            txn.prepare_ts = self.stamps.next(self.stamps.now.latest)
        self._out.records.append(LogRecord(
            RecordKind.PREPARED, txn.txn, coordinator=txn.coordinator,
            participants=txn.participants, protocol=txn.protocol, priority=txn.priority,
            writes=txn.writes, locks=tuple(sorted(txn.locks.items())), reads=txn.reads,
            ts=txn.prepare_ts))
        self._send(Vote(self.node_id, txn.coordinator, txn.txn, txn.protocol, True,
                        reads=txn.reads, ts=txn.prepare_ts))

    def _timestamped(self, txn: ParticipantTxn) -> bool:
        return self.config.timestamps and txn.protocol is Protocol.TWO_PHASE

    def _refuse(self, txn: ParticipantTxn, reason: str) -> None:
        """Vote no: it never voted yes, so it may abort alone (nothing to log)."""
        txn.move(ParticipantEvent.VOTE_NO)
        self.locks.release_all(txn.txn)
        del self.txns[txn.txn]
        self._remember(txn.txn, False)
        self._send(Vote(self.node_id, txn.coordinator, txn.txn, txn.protocol, False, reason))
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Locks were released: the waiting transactions try again, oldest first, until
        none moves (each pass that moves one finishes it: the passes are bounded)."""
        if self._waking:
            return  # the pass under way will look again
        self._waking = True
        try:
            moved = True
            while moved:
                moved = False
                waiting = sorted((txn for txn in self.txns.values()
                                  if txn.state is ParticipantState.LOCKING),
                                 key=lambda txn: txn.priority)
                for txn in waiting:
                    if self.txns.get(txn.txn) is txn and txn.state is ParticipantState.LOCKING:
                        self._acquire(txn)
                        moved = moved or txn.state is not ParticipantState.LOCKING
        finally:
            self._waking = False

    # ------------------------------------------------------------------ deciding

    def _decide(self, txn: ParticipantTxn, commit: bool, ts: int | None = None) -> None:
        txn.move(ParticipantEvent.COMMIT if commit else ParticipantEvent.ABORT)
        if not self._timestamped(txn) or txn.prepare_ts is None:
            ts = None
        elif commit and ts is None:
            # A commit of a timestamped transaction names its timestamp; one that does not
            # comes from no coordinator of ours.
            self.rejected += 1
            ts = txn.prepare_ts
        if commit:
            self.store.update(txn.writes)
            if ts is not None and self.config.versions is not None:
                self.stamps.witness(ts)
                self.config.versions.commit_at(txn.writes, ts)
        self._out.records.append(LogRecord(
            RecordKind.COMMITTED if commit else RecordKind.ABORTED, txn.txn,
            ts=ts if commit else None))
        self._release(txn, commit)
        if commit:
            self._send(DecisionAck(self.node_id, txn.coordinator, txn.txn))
        if self._waiting_reads:
            self._serve_waiting_reads()

    def _release(self, txn: ParticipantTxn, commit: bool) -> None:
        self.locks.release_all(txn.txn)
        del self.txns[txn.txn]
        self._remember(txn.txn, commit)
        self._wake_waiters()

    def _decide_and_tell(self, txn: ParticipantTxn, commit: bool) -> None:
        others = [node for node in txn.participants if node != self.node_id]
        coordinator = txn.coordinator
        self._decide(txn, commit)
        for node in others:
            self._send(Decision(self.node_id, node, txn.txn, commit))
        if coordinator not in others:
            self._send(Decision(self.node_id, coordinator, txn.txn, commit))

    def _remember(self, txn: str, committed: bool) -> None:
        self.finished[txn] = committed
        if len(self.finished) > FINISHED_LIMIT:
            del self.finished[next(iter(self.finished))]

    # ------------------------------------------------------------------ 3PC termination

    def _tick_termination(self, txn: ParticipantTxn) -> None:
        timeouts = self.config.timeouts
        termination = txn.termination
        if termination is None:
            rank = txn.participants.index(self.node_id)
            if txn.idle_ticks >= timeouts.in_doubt + rank * timeouts.termination_stagger:
                self._start_termination(txn)
            return
        termination.ticks += 1
        if termination.collecting and termination.ticks >= timeouts.collect:
            if txn.recovered and len(termination.replies) < len(txn.participants):
                # Back from a crash: rounds may have run without it; only everyone's
                # states can tell what they did.
                self._abandon(txn)
            else:
                self._conclude(txn)
        elif not termination.collecting and termination.ticks >= timeouts.predecide:
            self._abandon(txn)

    def _start_termination(self, txn: ParticipantTxn) -> None:
        self._round_counter = max(self._round_counter, txn.promised[0]) + 1
        round_ = (self._round_counter, int(self.node_id))
        self._promise(txn, round_)
        termination = txn.termination = Termination(round_)
        termination.replies[self.node_id] = self._state_reply(txn, round_, self.node_id)
        for node in txn.participants:
            if node != self.node_id:
                self._send(StateRequest(self.node_id, node, txn.txn, round_))

    def _abandon(self, txn: ParticipantTxn) -> None:
        txn.termination = None
        txn.idle_ticks = 0

    def _conclude(self, txn: ParticipantTxn) -> None:
        """Skeen's rules over the states collected in this round."""
        termination = txn.termination
        assert termination is not None and termination.collecting
        replies = list(termination.replies.values())
        if any(reply.state == "committed" for reply in replies):
            self._decide_and_tell(txn, True)
            return
        if any(reply.state == "aborted" for reply in replies):
            self._decide_and_tell(txn, False)
            return
        accepted = [reply for reply in replies if reply.accepted_commit is not None]
        value = False
        if accepted:
            highest = max(accepted, key=lambda reply: reply.accepted_round)
            value = bool(highest.accepted_commit)
        termination.collecting = False
        termination.ticks = 0
        termination.value = value
        self._accept(txn, termination.round, value)
        termination.acks = {self.node_id}
        for node in termination.replies:
            if node != self.node_id:
                self._send(PreDecide(self.node_id, node, txn.txn, termination.round, value))
        if termination.acks >= set(termination.replies):
            self._decide_and_tell(txn, value)

    def _promise(self, txn: ParticipantTxn, round_: Round) -> None:
        txn.promised = round_
        if txn.termination is not None and txn.termination.round < round_:
            txn.termination = None
        self._log_round(txn)

    def _accept(self, txn: ParticipantTxn, round_: Round, commit: bool) -> None:
        txn.promised = max(txn.promised, round_)
        txn.accepted_round = round_
        txn.accepted_commit = commit
        txn.move(ParticipantEvent.ACCEPT_COMMIT if commit else ParticipantEvent.ACCEPT_ABORT)
        self._log_round(txn)

    def _log_round(self, txn: ParticipantTxn) -> None:
        self._out.records.append(LogRecord(
            RecordKind.ROUND, txn.txn, promised=txn.promised,
            accepted_round=txn.accepted_round, accepted_commit=txn.accepted_commit))

    def _state_reply(self, txn: ParticipantTxn, round_: Round, to: NodeId) -> StateReply:
        return StateReply(self.node_id, to, txn.txn, round_, txn.state.value,
                          txn.accepted_round, txn.accepted_commit)

    def _send(self, message: Message) -> None:
        self._out.messages.append(message)
