"""One Multi-Paxos group's durable state in the node's shared WAL, and its snapshots.

What is kept is what the simulator's Paxos storage keeps: the acceptor's promised ballot,
its accepted (slot, ballot, value) triples, the replica's decisions, and compactions, each a
group-tagged Paxos record of the one WAL (bodies are the protobuf messages of the wire, so
disk and wire share one format); the state machine as of a compaction is a snapshot file.
`persist(ready)` writes a Ready's records, then waits for the node's shared fsync, so a
promise or an acceptance is on disk before the reply that depends on it leaves, and every
group of the node shares one fsync per batch.

A restart reads the records back (the log drops superseded ones): the latest promise,
the latest triple of each slot, the decisions, all after the latest compaction, so a
restarted acceptor never breaks a promise nor forgets what it accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.protobuf.message import DecodeError

from distlab.core.ids import NodeId
from distlab.proto import paxos_pb2
from distlab.protocols import multipaxos as paxos
from distlab.runtime.grpc.paxos_codec import (
    MalformedMessage,
    accepted_from_proto,
    accepted_to_proto,
    ballot_from_proto,
    ballot_to_proto,
    decision_from_proto,
    decision_to_proto,
)
from distlab.runtime.host.sync import SharedSync
from distlab.storage import (
    GroupLogStore,
    PaxosRecord,
    PaxosRecordKind,
    SnapshotStore,
    StableState,
    StableStore,
)

log = logging.getLogger(__name__)

_EMPTY_BODY = b""


class PaxosDurableStorage:
    """Implements the core's `Storage` (what it restarts from) and the driver's Storage port."""

    def __init__(self, log_store: GroupLogStore, stable: StableStore, snapshots: SnapshotStore,
                 shared_sync: SharedSync, voters: frozenset[NodeId]) -> None:
        """Raises ValueError when the group's state on disk is Raft's, or cannot be read."""
        group = log_store.group
        if (log_store.last_index() > 0 or log_store.snapshot_position() != (0, 0)
                or stable.load() != StableState()):
            raise ValueError(f"group {group} holds Raft state (log entries, term or vote): "
                             "this data directory was written with ENGINE=raft")
        self._log = log_store
        self._snapshots = snapshots
        self._shared_sync = shared_sync
        self._voters = voters
        self._promised = paxos.ZERO_BALLOT
        self._accepted: dict[int, paxos.Accepted] = {}
        self._decided: dict[int, paxos.Decision] = {}
        compacted = 0
        try:
            for record in log_store.paxos_records():
                compacted = self._replay(record, compacted)
        except (DecodeError, MalformedMessage) as error:
            raise ValueError(f"group {group}: a Paxos record cannot be read: {error}") from error
        stored = snapshots.open_latest()
        self._snapshot: paxos.Snapshot | None = None
        if stored is not None and stored.meta.last_index > 0:
            self._snapshot = paxos.Snapshot(paxos.SnapshotMeta(stored.meta.last_index),
                                            stored.data)
        snapshot_index = self._snapshot.meta.last_index if self._snapshot else 0
        if compacted > snapshot_index:
            raise ValueError(f"group {group}: the log is compacted through slot {compacted} "
                             f"but the newest snapshot covers {snapshot_index}")
        if snapshot_index > compacted:
            # The snapshot was saved but the crash came before the log recorded the compaction.
            self._drop_through(snapshot_index)
            self._write_compaction(snapshot_index)

    def _replay(self, record: PaxosRecord, compacted: int) -> int:
        match record.kind:
            case PaxosRecordKind.PROMISE:
                ballot = ballot_from_proto(paxos_pb2.PaxosBallot.FromString(record.body))
                if ballot < self._promised:
                    raise MalformedMessage(f"promise {ballot.describe()} below "
                                           f"{self._promised.describe()}")
                self._promised = ballot
            case PaxosRecordKind.ACCEPT:
                batch = paxos_pb2.PaxosAcceptedBatch.FromString(record.body)
                for accepted in batch.accepted:
                    triple = accepted_from_proto(accepted)
                    if triple.slot > compacted:
                        self._accepted[triple.slot] = triple
            case PaxosRecordKind.DECIDE:
                decisions = paxos_pb2.PaxosDecisionBatch.FromString(record.body)
                for decided in decisions.decisions:
                    decision = decision_from_proto(decided)
                    if decision.slot > compacted:
                        self._decided[decision.slot] = decision
            case PaxosRecordKind.COMPACT:
                if record.slot > compacted:
                    compacted = record.slot
                    self._drop_through(compacted)
        return compacted

    def _drop_through(self, slot: int) -> None:
        self._accepted = {s: a for s, a in self._accepted.items() if s > slot}
        self._decided = {s: d for s, d in self._decided.items() if s > slot}

    # --- the core's Storage protocol: read once, at start ---

    def promised(self) -> paxos.Ballot:
        return self._promised

    def accepted(self) -> Sequence[paxos.Accepted]:
        return [self._accepted[slot] for slot in sorted(self._accepted)]

    def decided(self) -> Sequence[paxos.Decision]:
        return [self._decided[slot] for slot in sorted(self._decided)]

    def snapshot(self) -> paxos.Snapshot | None:
        return self._snapshot

    def release_recovered(self) -> None:
        """The core has read what it restarts from: hold no copy of it."""
        self._accepted, self._decided = {}, {}

    # --- the driver's Storage port ---

    async def persist(self, ready: paxos.Ready) -> None:
        if ready.snapshot is not None:
            self.save_snapshot(ready.snapshot)
        records = []
        if ready.promised is not None:
            records.append(_promise_record(ready.promised))
        if ready.accepted:
            body = paxos_pb2.PaxosAcceptedBatch(
                accepted=[accepted_to_proto(triple) for triple in ready.accepted])
            records.append(PaxosRecord(PaxosRecordKind.ACCEPT,
                                       max(triple.slot for triple in ready.accepted),
                                       body.SerializeToString()))
        if ready.decided:
            decisions = paxos_pb2.PaxosDecisionBatch(
                decisions=[decision_to_proto(decision) for decision in ready.decided])
            records.append(PaxosRecord(PaxosRecordKind.DECIDE,
                                       max(decision.slot for decision in ready.decided),
                                       decisions.SerializeToString()))
        if records:
            self._log.append_paxos(records)
            await self._shared_sync.durable(self._log.written_seq)
        if ready.promised is not None:
            self._promised = ready.promised

    def save_snapshot(self, snapshot: paxos.Snapshot) -> None:
        """Keep `snapshot` (taken here or received from a peer) and drop the slots it covers;
        durable on return."""
        last = snapshot.meta.last_index
        if self._snapshot is not None and last <= self._snapshot.meta.last_index:
            return
        self._snapshots.save(last, 0, sorted(self._voters), [], snapshot.data)
        self._snapshot = snapshot
        self._write_compaction(last)

    def _write_compaction(self, through: int) -> None:
        # The promise is written again after the compaction, so the segments the compaction
        # lets go never hold its only copy.
        self._log.append_paxos([PaxosRecord(PaxosRecordKind.COMPACT, through, _EMPTY_BODY),
                                _promise_record(self._promised)])

    def close(self) -> None:
        """The node closes the shared stores; one group has nothing of its own to release."""


def _promise_record(ballot: paxos.Ballot) -> PaxosRecord:
    return PaxosRecord(PaxosRecordKind.PROMISE, 0, ballot_to_proto(ballot).SerializeToString())
