"""A group's transaction timestamps (Spanner §4.1.2): TrueTime as the driver last read it, and
the highest timestamp the group has assigned or promised.

Every timestamp a group assigns (a prepare timestamp, a commit timestamp as coordinator) is
above every one it assigned, accepted from a coordinator or promised to a snapshot read
before, and at least TrueTime's `latest` when it is assigned; so the group's versions and
its promises only move forward, across leaders too (a new leader recovers the highest one
from the group's records).
"""

from __future__ import annotations

from distlab.core.truetime import TTInterval

NO_TIMESTAMP = -1


class Stamps:
    def __init__(self) -> None:
        self.assigned = NO_TIMESTAMP
        # TrueTime as the driver read it before the inputs being handled arrived.
        self.now = TTInterval(0, 0)

    def observe_time(self, now: TTInterval) -> None:
        self.now = now

    def next(self, at_least: int) -> int:
        """A new timestamp: above every one before, and at least `at_least`."""
        self.assigned = max(self.assigned + 1, at_least)
        return self.assigned

    def witness(self, ts: int) -> None:
        """`ts` was assigned (a coordinator's commit timestamp) or promised here."""
        self.assigned = max(self.assigned, ts)
