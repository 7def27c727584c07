"""Log replication: the leader's appends, heartbeats and snapshots to followers, the commit
rule, and the follower's side of each.

The leader tracks each follower's log with a `Progress` (probe, replicate, snapshot). New
entries are not sent when they are appended but when the Ready is built, so proposals that
arrive together travel together. A follower learns the commit index from the next message it
gets, an append or the heartbeat of the next tick, never from a message of its own: every
message costs a wake-up and a reply on each side, and under load the next batch's append
carries the commit anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.quorum import quorum_index
from distlab.protocols.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Membership,
    Snapshot,
    TimeoutNow,
)
from distlab.protocols.raft.progress import Progress, ProgressState
from distlab.protocols.raft.roles import RaftRoles
from distlab.protocols.raft.state import Role


@dataclass(frozen=True, slots=True)
class Proposal:
    """Where an accepted proposal sits in the log; it is committed only if that entry is."""

    index: int
    term: int


# A snapshot's delivery is presumed lost after this many heartbeat replies without its ack.
_SNAPSHOT_RETRY_HEARTBEATS = 4


class Replication(RaftRoles):
    # ------------------------------------------------------------------ requests

    def propose(self, data: bytes) -> Proposal | None:
        """Appends a command if this node leads; None means "ask the leader"."""
        proposals = self.propose_batch([data])
        return proposals[0] if proposals else None

    def propose_batch(self, commands: list[bytes]) -> list[Proposal]:
        """Appends many commands at once; they travel to followers in as few messages as fit."""
        self._require_no_outstanding_ready()
        if not self._accepts_proposals():
            return []
        first = self.log.last_index() + 1
        entries = [
            Entry(self.term, first + offset, EntryKind.NORMAL, data)
            for offset, data in enumerate(commands)
        ]
        self._append_own(entries)
        return [Proposal(entry.index, entry.term) for entry in entries]

    # ------------------------------------------------------------------ transport feedback

    def report_unreachable(self, peer: NodeId) -> None:
        """The transport could not deliver to `peer` (etcd's ReportUnreachable).

        Appends streamed to it optimistically were probably lost: a leader stops streaming
        and probes it, one append at a time, until it answers. Anyone else ignores it.
        """
        self._require_no_outstanding_ready()
        progress = self._peer_progress(peer)
        if progress is not None and progress.state is ProgressState.REPLICATE:
            progress.become_probe()

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        """The transport finished sending `peer` a snapshot (etcd's ReportSnapshot).

        Either way the peer leaves SNAPSHOT state for PROBE, paused: after a success it waits
        for the follower's reply and resumes after the snapshot; after a failure it resumes
        from what the follower is known to hold, so the next heartbeat reply sends the
        snapshot again instead of waiting for it to be presumed lost.
        """
        self._require_no_outstanding_ready()
        progress = self._peer_progress(peer)
        if progress is None or progress.state is not ProgressState.SNAPSHOT:
            return
        progress.snapshot_reported(succeeded)

    def _peer_progress(self, peer: NodeId) -> Progress | None:
        if peer == self.id:
            raise ValueError(f"n{self.id} reported a transport fault about itself")
        return self.progress.get(peer) if self.role is Role.LEADER else None

    # ------------------------------------------------------------------ the leader's log

    def _accepts_proposals(self) -> bool:
        return (
            self.role is Role.LEADER
            and self._transfer_target == NO_NODE
            and self.id in self.membership.voters
        )

    def _append_own(self, entries: list[Entry]) -> None:
        assert self.role is Role.LEADER
        self.log.append(entries)
        self.progress[self.id].update_match(self.log.last_index())
        for entry in entries:
            if entry.kind is EntryKind.CONFIG:
                self._apply_membership(Membership.decode(entry.data), entry.index)
        self._needs_broadcast = True
        if self._maybe_commit():
            self._needs_broadcast = True

    def _maybe_commit(self) -> bool:
        voters = self.membership.voters
        if not voters:
            return False
        matches = [self.progress[voter].match if voter in self.progress else 0 for voter in voters]
        index = quorum_index(matches)
        # Only entries of the current term commit by counting replicas (Raft, section 5.4.2);
        # the planted bug commits older ones too.
        if index > self.log.committed and (
            self.log.term_at(index) == self.term or self._planted.old_term_commit
        ):
            self.log.commit_to(index)
            self._after_commit()
            return True
        return False

    def _after_commit(self) -> None:
        self._register_reads_awaiting_term_commit()
        self._after_membership_commit()

    # ------------------------------------------------------------------ sending

    def _flush_appends(self) -> None:
        """Sends the entries that accumulated since the last Ready."""
        if self._needs_broadcast:
            self._needs_broadcast = False
            self._broadcast_append()

    def _appends_to_flush(self) -> bool:
        """Whether `_flush_appends` would send anything now (it changes nothing)."""
        if self._needs_broadcast:
            last_index = self.log.last_index()
            for peer, progress in self.progress.items():
                if peer != self.id and progress.next <= last_index and not progress.is_paused():
                    return True
        return False

    def _broadcast_append(self) -> None:
        reached_all = True
        for peer in self._peers():
            if not self._send_pending_entries(peer):
                reached_all = False
        if reached_all:
            self._heartbeat_elapsed = 0  # everyone just heard from us: no heartbeat needed

    def _broadcast_heartbeat(self) -> None:
        for peer in self._peers():
            commit = min(self.progress[peer].match, self.log.committed)
            self._send(
                Heartbeat(self.term, self.id, peer, commit=commit, read_round=self._read_round)
            )

    def _send_pending_entries(self, peer: NodeId) -> bool:
        """Streams entries `peer` lacks until its pipeline is full or nothing is left."""
        progress = self.progress.get(peer)
        sent = False
        while (
            progress is not None
            and progress.next <= self.log.last_index()
            and self._send_append(peer, send_if_empty=False)
        ):
            sent = True
            if progress.state is not ProgressState.REPLICATE:
                break
        return sent

    def _send_append(self, peer: NodeId, send_if_empty: bool) -> bool:
        """Sends the next append (or snapshot) `peer` needs; False if nothing was sent."""
        progress = self.progress[peer]
        if progress.is_paused():
            return False
        prev_index = progress.next - 1
        prev_term = self.log.term_at(prev_index)
        if prev_term is None:
            self._send_snapshot(peer, progress)
            return True
        entries = self._entries_for_message(progress.next)
        if not entries and not send_if_empty:
            return False
        self._send(
            AppendEntries(
                self.term,
                self.id,
                peer,
                prev_index,
                prev_term,
                tuple(entries),
                self.log.committed,
                read_round=self._read_round,
            )
        )
        progress.sent_entries(prev_index + len(entries), len(entries))
        return True

    def _entries_for_message(self, first: int) -> list[Entry]:
        last = min(self.log.last_index(), first + self.config.max_entries_per_message - 1)
        if last < first:
            return []
        entries = self.log.slice(first, last + 1)
        size = 0
        for count, entry in enumerate(entries):
            size += len(entry.data)
            if size > self.config.max_bytes_per_message and count > 0:
                return entries[:count]
        return entries

    def _send_snapshot(self, peer: NodeId, progress: Progress) -> None:
        snapshot = self._snapshot
        assert snapshot is not None, "entries were compacted without a snapshot"
        progress.become_snapshot(snapshot.meta.last_index)
        self._send(InstallSnapshot(self.term, self.id, peer, snapshot.meta, snapshot.data))

    # ------------------------------------------------------------------ the leader's replies

    def _handle_append_success(self, peer: NodeId, progress: Progress, match_index: int) -> None:
        if match_index > self.log.last_index():
            self._reject(f"n{peer} claims to match {match_index}, beyond our log")
            return
        if progress.update_match(match_index):
            snapshot_done = (
                progress.state is ProgressState.SNAPSHOT
                and progress.match >= progress.pending_snapshot
            )
            if progress.state is ProgressState.PROBE or snapshot_done:
                progress.become_replicate()
            if peer == self._transfer_target and progress.match == self.log.last_index():
                self._send(TimeoutNow(self.term, self.id, peer))
            self._maybe_promote(peer, progress)
        self._send_pending_entries(peer)
        self._maybe_commit()

    def _handle_append_rejection(
        self, peer: NodeId, progress: Progress, message: AppendEntriesReply
    ) -> None:
        if message.rejected_index == 0 and message.conflict_index == 0:
            return  # a stale-term notice, already handled by the term check
        if message.rejected_index > self.log.last_index():
            self._reject(f"n{peer} rejects index {message.rejected_index}, beyond our log")
            return
        if progress.is_stale_rejection(message.rejected_index):
            return
        if message.conflict_term > 0:
            last_of_term = self.log.last_index_of_term(
                message.conflict_term, message.rejected_index
            )
            next_index = last_of_term + 1 if last_of_term is not None else message.conflict_index
        else:
            next_index = message.conflict_index
        next_index = min(next_index, message.rejected_index)
        if progress.state is ProgressState.REPLICATE:
            progress.become_probe()
        progress.back_up_to(next_index)
        self._send_append(peer, send_if_empty=True)

    def _handle_heartbeat_reply(self, peer: NodeId, progress: Progress) -> None:
        if progress.state is ProgressState.SNAPSHOT:
            progress.heartbeats_since_snapshot += 1
            if progress.heartbeats_since_snapshot >= _SNAPSHOT_RETRY_HEARTBEATS:
                progress.become_probe()  # the snapshot was lost: probe, and resend if needed
        elif progress.state is ProgressState.PROBE:
            progress.probe_sent = False
        elif progress.is_paused():
            progress.free_one_inflight()  # an append was probably lost: let one more through
        if progress.match < self.log.last_index():
            self._send_append(peer, send_if_empty=True)

    # ------------------------------------------------------------------ the follower's side

    def _handle_append(self, message: AppendEntries) -> None:
        log = self.log
        if message.prev_log_index < log.committed:
            # Everything up to our commit index matches the leader's log already.
            self._acknowledge_append(message, log.committed)
            return
        if log.matches(message.prev_log_index, message.prev_log_term) or (
            # planted: any previous entry will do (a log with a hole cannot be built)
            self._planted.no_prev_log_check and message.prev_log_index <= log.last_index()
        ):
            conflict = log.first_conflict(message.entries)
            if conflict and conflict <= log.committed:
                self._reject(f"append would overwrite committed entry {conflict}")
                return
            if self._planted.truncate_on_stale_append and message.entries:
                first_written = log.overwrite_from(message.entries)
            else:
                first_written = log.truncate_and_append(message.entries)
            if first_written:
                self._after_log_write(first_written)
            last_new = message.prev_log_index + len(message.entries)
            assert not message.entries or log.term_at(last_new) == message.entries[-1].term, (
                f"log matching: entry {last_new} differs from the leader's after an append"
            )
            log.commit_to(min(message.leader_commit, last_new))
            self._acknowledge_append(message, last_new)
            return
        conflict_term = log.term_at(message.prev_log_index)
        if conflict_term is None:
            conflict_term, conflict_index = 0, log.last_index() + 1
        else:
            conflict_index = log.first_index_of_term_at(message.prev_log_index)
        self._send(
            AppendEntriesReply(
                self.term,
                self.id,
                message.sender,
                success=False,
                rejected_index=message.prev_log_index,
                conflict_term=conflict_term,
                conflict_index=conflict_index,
                read_round=message.read_round,
            )
        )

    def _acknowledge_append(self, message: AppendEntries, match_index: int) -> None:
        self._send(
            AppendEntriesReply(
                self.term,
                self.id,
                message.sender,
                success=True,
                match_index=match_index,
                read_round=message.read_round,
            )
        )

    def _handle_heartbeat(self, message: Heartbeat) -> None:
        if message.commit > self.log.last_index():
            self._reject(f"heartbeat commit {message.commit} beyond our log")
        else:
            self.log.commit_to(message.commit)
        self._send(
            HeartbeatReply(
                self.term,
                self.id,
                message.sender,
                read_round=message.read_round,
                last_log_index=self.log.last_index(),
            )
        )

    def _handle_snapshot(self, message: InstallSnapshot) -> None:
        meta = message.meta
        log = self.log
        if meta.last_index <= log.committed:
            match_index = log.committed
        elif log.matches(meta.last_index, meta.last_term):
            # Our log already holds the snapshot's last entry: only the commit index moves.
            log.commit_to(meta.last_index)
            match_index = meta.last_index
        else:
            log.restore(meta.last_index, meta.last_term)
            snapshot = Snapshot(meta, message.data)
            self._snapshot = snapshot
            self._received_snapshot = snapshot
            self._base_membership = meta.membership
            self.membership = meta.membership
            self._config_index = meta.last_index
            match_index = meta.last_index
        self._send(InstallSnapshotReply(self.term, self.id, message.sender, match_index))
