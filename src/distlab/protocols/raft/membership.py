"""Membership changes: one server at a time, new members as learners, then promotion.

Single-server changes (Raft dissertation, section 4.1), not joint consensus: each change adds
or removes one voter, so any majority of the old configuration overlaps any majority of the
new one and no intermediate joint configuration is needed. That keeps the quorum arithmetic
and the recovery path (a configuration is simply the latest one in the log) small. A
configuration takes effect as soon as it is in a member's log, committed or not; to stay safe
the leader proposes a change only once it has committed an entry of its own term and the
previous change is committed (the fix Ongaro described for single-server changes across
leader changes). New members join as learners, which receive the log but neither vote nor
count towards quorums; the leader promotes a learner to voter once its log has caught up with
the commit index. A leader that removes itself steps down once the change commits.
"""

from __future__ import annotations

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.raft.messages import Entry, EntryKind, Membership
from distlab.protocols.raft.progress import Progress
from distlab.protocols.raft.roles import RaftRoles
from distlab.protocols.raft.state import Role


class MembershipChanges(RaftRoles):
    # ------------------------------------------------------------------ requests

    def add_member(self, node: NodeId) -> bool:
        """Adds `node` as a learner; it is promoted to voter once it has caught up."""
        self._require_no_outstanding_ready()
        if not self._can_change_membership() or node in self.membership.members or node <= 0:
            return False
        membership = Membership(self.membership.voters, self.membership.learners | {node})
        self._append_own([self._config_entry(membership)])
        return True

    def remove_member(self, node: NodeId) -> bool:
        """Removes one voter or learner; the cluster must keep at least one voter."""
        self._require_no_outstanding_ready()
        if not self._can_change_membership() or node not in self.membership.members:
            return False
        voters = self.membership.voters - {node}
        if not voters:
            return False
        membership = Membership(voters, self.membership.learners - {node})
        self._append_own([self._config_entry(membership)])
        return True

    # ------------------------------------------------------------------ the leader

    def _can_change_membership(self) -> bool:
        return (
            self.role is Role.LEADER
            and self._transfer_target == NO_NODE
            and self._committed_in_current_term()
            and self._config_index <= self.log.committed
        )

    def _config_entry(self, membership: Membership) -> Entry:
        return Entry(self.term, self.log.last_index() + 1, EntryKind.CONFIG, membership.encode())

    def _maybe_promote(self, peer: NodeId, progress: Progress) -> None:
        if (
            peer in self.membership.learners
            and progress.match >= self.log.committed
            and self._can_change_membership()
        ):
            membership = Membership(
                self.membership.voters | {peer}, self.membership.learners - {peer}
            )
            self._append_own([self._config_entry(membership)])

    def _apply_membership(self, membership: Membership, index: int) -> None:
        self.membership = membership
        self._config_index = index
        if self.role is not Role.LEADER:
            return
        next_index = self.log.last_index() + 1
        for member in sorted(membership.members):
            if member not in self.progress:
                self.progress[member] = Progress(next_index, self.config.max_inflight_appends)
        # A member being removed keeps its progress, and so keeps receiving the log, until
        # the change commits: it learns of its own removal from the entry and stops
        # campaigning, rather than calling elections nobody answers for ever. It no longer
        # counts towards any quorum (those count the voters).

    def _after_membership_commit(self) -> None:
        """Once the latest change is committed: forget removed members, and step down if
        this leader removed itself."""
        if self.log.committed < self._config_index:
            return
        members = self.membership.members
        for member in list(self.progress):
            if member not in members and member != self.id:
                del self.progress[member]
        if self.id not in self.membership.voters:
            self._become_follower(self.term, NO_NODE)  # we removed ourselves

    # ------------------------------------------------------------------ any member

    def _after_log_write(self, first_written: int) -> None:
        """Keeps the membership equal to the latest configuration entry in the log."""
        if first_written <= self._config_index:
            self._refresh_membership()
            return
        config = EntryKind.CONFIG
        for entry in self.log.slice(first_written, self.log.last_index() + 1):
            if entry.kind is config:
                self.membership = Membership.decode(entry.data)
                self._config_index = entry.index

    def _refresh_membership(self) -> None:
        index = self.log.last_index()
        while index > self.log.snapshot_index:
            entry = self.log.entry_at(index)
            assert entry is not None
            if entry.kind is EntryKind.CONFIG:
                self.membership = Membership.decode(entry.data)
                self._config_index = index
                return
            index -= 1
        self.membership = self._base_membership
        self._config_index = self.log.snapshot_index

    def _membership_at(self, index: int) -> Membership:
        while index > self.log.snapshot_index:
            entry = self.log.entry_at(index)
            assert entry is not None
            if entry.kind is EntryKind.CONFIG:
                return Membership.decode(entry.data)
            index -= 1
        return self._base_membership
