"""Linearizable reads without writing to the log: ReadIndex (Raft dissertation, section 6.4).

A read is served at the commit index it was registered at, once a heartbeat round started
after that moment has been acknowledged by a majority: that proves no newer leader had been
elected when the read arrived. Until an entry of the leader's own term commits, its commit
index may lag what earlier leaders committed, so reads wait for that first.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NodeId
from distlab.core.quorum import quorum_index
from distlab.protocols.raft.roles import RaftRoles
from distlab.protocols.raft.state import ReadState, Role


@dataclass(slots=True)
class PendingRead:
    context: bytes
    index: int
    round: int


class ReadOnly(RaftRoles):
    def read_index(self, context: bytes) -> bool:
        """Starts a linearizable read; its ReadState appears in a later Ready.

        Returns False when this node cannot serve it (not the leader, or too many pending).
        """
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER:
            return False
        pending = len(self._pending_reads) + len(self._reads_awaiting_term_commit)
        if pending >= self.config.max_pending_reads:
            return False
        if not self._committed_in_current_term():
            # The commit index may lag what earlier leaders committed until this term's
            # no-op commits; a read index taken now could miss acknowledged writes.
            self._reads_awaiting_term_commit.append(context)
            return True
        self._register_read(context)
        return True

    def _committed_in_current_term(self) -> bool:
        return self.log.term_at(self.log.committed) == self.term

    def _register_read(self, context: bytes) -> None:
        if self._planted.read_without_confirm:
            self._read_states.append(ReadState(context, self.log.committed))  # planted
            return
        # Served at the current commit index once a heartbeat round started after this
        # moment is acknowledged by a majority, proving no newer leader exists.
        self._pending_reads.append(PendingRead(context, self.log.committed, self._read_round + 1))
        self._read_round_requested = True

    def _register_reads_awaiting_term_commit(self) -> None:
        if self._reads_awaiting_term_commit and self._committed_in_current_term():
            waiting, self._reads_awaiting_term_commit = self._reads_awaiting_term_commit, []
            for context in waiting:
                self._register_read(context)

    def _flush_read_round(self) -> None:
        """Starts the heartbeat round that reads registered since the last Ready wait for."""
        if self._read_round_requested:
            self._read_round_requested = False
            self._read_round += 1
            self.progress[self.id].read_round = self._read_round
            self._broadcast_heartbeat()
            self._release_confirmed_reads()

    def _acknowledge_read(self, peer: NodeId, read_round: int) -> None:
        progress = self.progress[peer]
        if read_round > progress.read_round:
            progress.read_round = read_round
            self._release_confirmed_reads()

    def _release_confirmed_reads(self) -> None:
        if not self._pending_reads:
            return
        rounds = [
            self.progress[voter].read_round if voter in self.progress else 0
            for voter in self.membership.voters
        ]
        confirmed = quorum_index(rounds)
        while self._pending_reads and self._pending_reads[0].round <= confirmed:
            read = self._pending_reads.popleft()
            self._read_states.append(ReadState(read.context, read.index))

    def _fail_pending_reads(self) -> None:
        for read in self._pending_reads:
            self._read_states.append(ReadState(read.context, read.index, ok=False))
        for context in self._reads_awaiting_term_commit:
            self._read_states.append(ReadState(context, 0, ok=False))
        self._pending_reads.clear()
        self._reads_awaiting_term_commit = []
        self._read_round_requested = False
