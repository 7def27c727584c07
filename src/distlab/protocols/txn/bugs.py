"""Known mistakes that can be planted in the transaction cores, so that the simulator can
prove it finds them. With none planted the cores behave exactly as without these hooks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from distlab.core.bugs import planted_flags

CATALOGUE: Mapping[str, str] = MappingProxyType(
    {
        "commit-before-log": (
            "the coordinator sends COMMIT before its decision is on disk (it logs it only "
            "with END): a coordinator that crashes in between presumes abort on restart "
            "while some participants committed"
        ),
        "unilateral-abort-after-yes": (
            "a 2PC participant that voted yes and hears nothing aborts on its own: the "
            "others may commit"
        ),
        "forget-locks-on-restart": (
            "a participant restarted with a prepared transaction does not take its locks "
            "back: other transactions read and overwrite what it is about to write"
        ),
    }
)
# Spanner's timestamps (2PC over groups with TrueTime).
TIMESTAMP_CATALOGUE: Mapping[str, str] = MappingProxyType(
    {
        "no-commit-wait": (
            "the coordinator reports a commit and sends COMMIT without waiting until "
            "TrueTime is past its timestamp: a transaction that starts after it completes "
            "can get a lower timestamp (external consistency lost)"
        ),
        "read-below-safe-time": (
            "a snapshot read is answered while a transaction prepared at or below its "
            "timestamp is undecided: the read misses a write that later commits below it"
        ),
        "ts-below-prepare": (
            "the coordinator picks the commit timestamp from its own clock alone, not above "
            "every participant's prepare timestamp: a version lands below reads already "
            "answered"
        ),
    }
)


@dataclass(frozen=True, slots=True)
class PlantedBugs:
    commit_before_log: bool = False
    unilateral_abort_after_yes: bool = False
    forget_locks_on_restart: bool = False
    no_commit_wait: bool = False
    read_below_safe_time: bool = False
    ts_below_prepare: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> PlantedBugs:
        return cls(**planted_flags(names, {**CATALOGUE, **TIMESTAMP_CATALOGUE}))
