"""The leader's view of one follower's log (etcd-io/raft's tracker.Progress, simplified).

- PROBE: we do not know where the follower's log matches ours; send one append at a time
  and wait for the answer (or the next heartbeat reply) before sending again.
- REPLICATE: the follower is in step; stream appends optimistically, at most
  `max_inflight` unacknowledged messages at once.
- SNAPSHOT: the entries it needs are compacted away; a snapshot is on its way.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    __slots__ = (
        "heartbeats_since_snapshot",
        "inflight",
        "match",
        "max_inflight",
        "next",
        "pending_snapshot",
        "probe_sent",
        "read_round",
        "recent_active",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.heartbeats_since_snapshot = 0
        self.max_inflight = max_inflight
        # last index carried by each unacknowledged append, oldest first
        self.inflight: deque[int] = deque()
        self.recent_active = False
        self.read_round = 0

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.value}, match={self.match}, next={self.next}, "
            f"inflight={len(self.inflight)})"
        )

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def snapshot_reported(self, succeeded: bool) -> None:
        """The snapshot reached the follower, or failed to: probe, paused until it answers.

        After a success the next append follows the snapshot; after a failure it starts
        from the match, so it finds the entries compacted and sends the snapshot again.
        """
        assert self.state is ProgressState.SNAPSHOT
        if not succeeded:
            self.pending_snapshot = 0
        self.become_probe()
        self.probe_sent = True

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.heartbeats_since_snapshot = 0
        self.inflight.clear()

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        return True

    def sent_entries(self, last_index: int, count: int) -> None:
        """Records an append carrying entries up to `last_index` (`count` of them)."""
        if self.state is ProgressState.REPLICATE:
            if count:
                self.next = last_index + 1
                self.inflight.append(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def update_match(self, index: int) -> bool:
        """A follower acknowledged up to `index`; returns whether match moved forward."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return updated

    def free_one_inflight(self) -> None:
        if self.inflight:
            self.inflight.popleft()

    def is_stale_rejection(self, rejected_index: int) -> bool:
        """A rejection that answers an append we have already moved past."""
        if self.state is ProgressState.REPLICATE:
            return rejected_index <= self.match
        return self.next - 1 != rejected_index

    def back_up_to(self, next_index: int) -> None:
        """Moves `next` back after a rejection, never to or below what is known to match."""
        self.next = max(next_index, self.match + 1)
        self.probe_sent = False
