"""One node's transaction core: its coordinator and its participant, behind one Ready.

Inputs: `tick()`, `step(message)`, `begin(...)` (a client's transaction). Output: `ready()`
holds the records to force-log, the messages to send and the outcomes to report; the
caller persists the records (fsync) before it sends anything, then reports, then calls
`advance()`. Messages a node addresses to itself go out like any other (the driver hands
them back after the Ready), so a coordinator that is also a participant counts its own vote
only once that vote's PREPARED is on disk.
"""

from __future__ import annotations

from collections.abc import Sequence

from distlab.core.truetime import TTInterval
from distlab.protocols.txn.config import InDoubt, Outbox, TxnConfig, TxnReady
from distlab.protocols.txn.coordinator import Coordinator
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
    StateReply,
    StateRequest,
    Vote,
)
from distlab.protocols.txn.ops import Op
from distlab.protocols.txn.participant import Participant
from distlab.protocols.txn.records import LogRecord
from distlab.protocols.txn.stamps import Stamps


class TxnNode:
    def __init__(self, config: TxnConfig, records: Sequence[LogRecord] = ()) -> None:
        self.config = config
        self.node_id = config.node_id
        self._out = Outbox()
        # One node (or group) assigns its timestamps in one sequence, whichever role.
        self.stamps = Stamps()
        self.coordinator = Coordinator(config, self._out, self.stamps)
        self.participant = Participant(config, self._out, self.stamps)
        recovered = list(records)
        self.participant.recover(recovered)
        self.coordinator.recover(recovered)
        self._handed_out: TxnReady | None = None
        self.rejected = 0

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        self.coordinator.tick()
        self.participant.tick()

    def observe_time(self, now: TTInterval) -> None:
        """TrueTime as the driver read it: the timestamps of what comes next are drawn
        from it."""
        self.stamps.observe_time(now)

    def begin_read(self, txn: str, keys: tuple[str, ...], ts: int | None) -> None:
        self.coordinator.begin_read(txn, keys, ts)

    def promise_safe_time(self) -> int | None:
        return self.participant.promise_safe_time()

    def begin(self, txn: str, priority: Priority, ops: tuple[Op, ...],
              protocol: Protocol) -> None:
        self.coordinator.begin(txn, priority, ops, protocol)

    def step(self, message: Message) -> None:
        if message.recipient != self.node_id:
            self.rejected += 1
            return
        participant, coordinator = self.participant, self.coordinator
        if isinstance(message, Prepare):
            participant.on_prepare(message)
        elif isinstance(message, Vote):
            coordinator.on_vote(message)
        elif isinstance(message, PreDecide):
            participant.on_predecide(message)
        elif isinstance(message, PreDecideAck):
            if message.round == COORDINATOR_ROUND:
                coordinator.on_predecide_ack(message)
            else:
                participant.on_predecide_ack(message)
        elif isinstance(message, Decision):
            # Both roles may need it: a terminator tells the coordinator too.
            if coordinator.knows(message.txn):
                coordinator.on_decision(message)
            if participant.knows(message.txn) or not coordinator.knows(message.txn):
                participant.on_decision(message)
        elif isinstance(message, DecisionAck):
            coordinator.on_decision_ack(message)
        elif isinstance(message, Inquire):
            coordinator.on_inquire(message)
        elif isinstance(message, StateRequest):
            participant.on_state_request(message)
        elif isinstance(message, SnapshotRead):
            participant.on_snapshot_read(message)
        elif isinstance(message, SnapshotReadReply):
            coordinator.on_snapshot_read_reply(message)
        else:
            assert isinstance(message, StateReply)
            participant.on_state_reply(message)

    # ------------------------------------------------------------------ output

    def has_ready(self) -> bool:
        return not self._out.empty()

    def ready(self) -> TxnReady:
        out = self._out
        ready = TxnReady(tuple(out.records), tuple(out.messages), tuple(out.outcomes))
        self._handed_out = ready
        return ready

    def advance(self) -> None:
        ready, self._handed_out = self._handed_out, None
        assert ready is not None, "advance() without ready()"
        out = self._out
        # Only what was handed out, should an input have come between ready() and advance().
        del out.records[:len(ready.records)]
        del out.messages[:len(ready.messages)]
        del out.outcomes[:len(ready.outcomes)]

    # ------------------------------------------------------------------ status

    def idle(self) -> bool:
        """No transaction is under way here: a tick would change nothing."""
        return not (self.coordinator.txns or self.participant.txns)

    def in_doubt(self) -> list[InDoubt]:
        return self.coordinator.in_doubt() + self.participant.in_doubt()

