"""Chain replication's invariants, checked after every Ready of every replica.

- update propagation: in one epoch, a successor's history is a prefix of its
  predecessor's (it holds no more, and the digests of the two histories agree where the
  successor's ends);
- in-process requests: what a predecessor holds beyond its successor's history is in its
  Sent (`Hist_i = Hist_j + Sent_i`): what it counts as acknowledged, its successor holds;
- one committed history: wherever two replicas have committed up to the same update, their
  histories agree there;
- only committed values are answered: a write is acknowledged, and a read returns a
  version, only once the update is applied at a tail;
- epochs only grow, at every replica across its restarts (as far as it made them durable),
  and an epoch names one configuration;
- a client's write is committed at most once: no two committed updates carry the same
  client's name for a write (a retry was recognised, not numbered again).
"""

from __future__ import annotations

import itertools

from distlab.core.ids import NodeId
from distlab.protocols.chain import ROLES, ChainConfig, ChainReplica, Outcome, Ready, durable


class InvariantViolation(AssertionError):
    pass


class ChainInvariants:
    def __init__(self) -> None:
        self.epochs: dict[NodeId, int] = {}
        self.configs: dict[int, ChainConfig] = {}
        # seq -> digest of the history up to it, at the first replica that committed it
        self.committed: dict[int, tuple[NodeId, int]] = {}
        self.highest_committed = 0
        self.checks = 0
        # Each replica's history as its records leave it, by seq: the client's name for the
        # write (0, 0 for an unnamed one), until the replica has committed it.
        self.names: dict[NodeId, dict[int, tuple[int, int]]] = {}
        self.committed_upto: dict[NodeId, int] = {}
        # (client, request) -> the seq it was committed at
        self.committed_writes: dict[tuple[int, int], int] = {}

    def replica_started(self, node: NodeId, core: ChainReplica) -> None:
        durable = self.epochs.get(node, 0)
        if core.epoch < durable:
            raise InvariantViolation(f"n{node} restarted in epoch {core.epoch}, below the "
                                     f"epoch {durable} it had made durable")

    def replica_stopped(self, node: NodeId) -> None:
        # What it held comes back from its disk, already counted where it was committed.
        self.names.pop(node, None)

    def after_ready(self, node: NodeId, core: ChainReplica, ready: Ready,
                    cores: dict[NodeId, ChainReplica]) -> None:
        self.checks += 1
        self._epoch(node, core)
        self._commit(node, core)
        self._written_once(node, core, ready)
        for reply in ready.replies:
            if reply.outcome is Outcome.OK and reply.seq > self.highest_committed:
                what = "a read returned version" if reply.how else "a write was acknowledged at"
                raise InvariantViolation(
                    f"n{node} answered before the tail applied it: {what} {reply.seq}, and no "
                    f"tail has applied beyond {self.highest_committed}")
        self._neighbours(core, cores)

    def _epoch(self, node: NodeId, core: ChainReplica) -> None:
        before = self.epochs.get(node, 0)
        if core.epoch < before:
            raise InvariantViolation(f"n{node}'s epoch went back from {before} to {core.epoch}")
        self.epochs[node] = core.epoch
        if core.chain.chain:
            known = self.configs.setdefault(core.epoch, core.chain)
            if known != core.chain:
                raise InvariantViolation(f"epoch {core.epoch} names two configurations: "
                                         f"{known} and {core.chain}")

    def _commit(self, node: NodeId, core: ChainReplica) -> None:
        seq = core.committed
        if seq == 0:
            return
        # A watermark is only ever raised by a tail's applying (or its acknowledgement).
        self.highest_committed = max(self.highest_committed, seq)
        digest = core.digest_at(seq)
        if digest is None:
            return
        first = self.committed.setdefault(seq, (node, digest))
        if first[1] != digest:
            raise InvariantViolation(
                f"n{node} and n{first[0]} committed different histories up to update {seq}")

    def _written_once(self, node: NodeId, core: ChainReplica, ready: Ready) -> None:
        names = self.names.setdefault(node, {})
        for kind, body in ready.persist:
            if kind in (durable.UPDATE, durable.WRITE):
                update = durable.decode_update(kind, body)
                names[update.seq] = (update.client, update.request)
            elif kind == durable.RESET:
                names.clear()
        start = self.committed_upto.get(node, 0)
        if core.committed <= start:
            return
        for seq in range(start + 1, core.committed + 1):
            name = names.pop(seq, None)
            if name is None or name == (0, 0):
                continue  # not recorded here since the replica (re)started, or unnamed
            first = self.committed_writes.setdefault(name, seq)
            if first != seq:
                raise InvariantViolation(
                    f"client {name[0]}'s write {name[1]} was committed twice, as updates "
                    f"{first} and {seq}")
        self.committed_upto[node] = core.committed

    def _neighbours(self, core: ChainReplica, cores: dict[NodeId, ChainReplica]) -> None:
        config = core.chain
        members = [cores[node] for node in config.chain
                   if node in cores and cores[node].epoch == config.epoch
                   and ROLES[cores[node].role].member and not cores[node].must_join]
        for predecessor, successor in itertools.pairwise(members):
            if config.successor(predecessor.node_id) != successor.node_id:
                continue
            if successor.last > predecessor.last:
                raise InvariantViolation(
                    f"update propagation: n{successor.node_id} holds {successor.last} updates, "
                    f"more than its predecessor n{predecessor.node_id}'s {predecessor.last} "
                    f"(epoch {config.epoch})")
            ours = predecessor.digest_at(successor.last)
            theirs = successor.digest_at(successor.last)
            if ours is not None and theirs is not None and ours != theirs:
                raise InvariantViolation(
                    f"update propagation: n{successor.node_id}'s history is not a prefix of "
                    f"n{predecessor.node_id}'s (they differ by update {successor.last})")
            if predecessor.acked > successor.last:
                raise InvariantViolation(
                    f"in-process requests: n{predecessor.node_id} counts {predecessor.acked} "
                    f"as acknowledged but n{successor.node_id} holds only {successor.last}")
