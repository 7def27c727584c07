"""A participant's lock table: strict two-phase locking with wait-die.

Shared locks are compatible with each other, an exclusive lock with nothing. A request that
conflicts waits if the requester is older than every holder it conflicts with, and dies
otherwise (the younger aborts, and its client retries with the same age, so that it grows
old enough to win). Waits only ever go from older to younger, so no cycle can form.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distlab.protocols.txn.ops import LockMode

Priority = tuple[int, str]


class Grant(enum.Enum):
    GRANTED = "granted"
    WAIT = "wait"
    DIE = "die"


@dataclass(frozen=True, slots=True)
class LockAnswer:
    grant: Grant
    # The holders it conflicts with (for the reason a loser gives).
    blockers: tuple[str, ...] = ()


class LockTable:
    def __init__(self) -> None:
        self._holders: dict[str, dict[str, LockMode]] = {}
        self._priorities: dict[str, Priority] = {}

    def request(self, txn: str, priority: Priority, key: str, mode: LockMode) -> LockAnswer:
        self._priorities.setdefault(txn, priority)
        holders = self._holders.setdefault(key, {})
        conflicting = [holder for holder, held in holders.items()
                       if holder != txn and (mode is LockMode.EXCLUSIVE
                                             or held is LockMode.EXCLUSIVE)]
        if not conflicting:
            if holders.get(txn) is not LockMode.EXCLUSIVE:
                holders[txn] = mode
            return LockAnswer(Grant.GRANTED)
        blockers = tuple(sorted(conflicting))
        if all(priority < self._priorities[holder] for holder in conflicting):
            return LockAnswer(Grant.WAIT, blockers)
        return LockAnswer(Grant.DIE, blockers)

    def restore(self, txn: str, priority: Priority, locks: dict[str, LockMode]) -> None:
        """Take back, at recovery, the locks a prepared transaction held: nothing else runs
        yet, so nothing can conflict."""
        self._priorities[txn] = priority
        for key, mode in locks.items():
            holders = self._holders.setdefault(key, {})
            assert all(held is LockMode.SHARED for other, held in holders.items()
                       if other != txn) or not holders, f"{key} locked twice at recovery"
            holders[txn] = mode

    def release_all(self, txn: str) -> None:
        self._priorities.pop(txn, None)
        for key in [key for key, holders in self._holders.items() if txn in holders]:
            holders = self._holders[key]
            del holders[txn]
            if not holders:
                del self._holders[key]

    def held_by(self, txn: str) -> dict[str, LockMode]:
        return {key: holders[txn] for key, holders in self._holders.items() if txn in holders}

    def holds(self, txn: str, key: str, mode: LockMode) -> bool:
        held = self._holders.get(key, {}).get(txn)
        return held is LockMode.EXCLUSIVE or held is mode

    def holders(self, key: str) -> dict[str, LockMode]:
        return dict(self._holders.get(key, {}))
