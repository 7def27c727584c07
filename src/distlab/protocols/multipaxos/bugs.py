"""Known Paxos mistakes that can be planted in the real core, for a simulator to find.

Each name is checked at the one place in the core where that mistake would be made; with no
bug planted the core behaves exactly as without these hooks. `Config.planted_bugs` names the
bugs to plant; `PlantedBugs` turns the names into flags once, at construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from distlab.core.bugs import planted_flags
from distlab.core.bugs import unknown_bugs as core_unknown_bugs

CATALOGUE: Mapping[str, str] = MappingProxyType(
    {
        "accept-lower-ballot": (
            "an acceptor accepts a value under a ballot lower than the one it promised: a "
            "deposed leader overwrites a slot a newer leader chose another value in"
        ),
        "ignore-accepted-value": (
            "a new leader proposes its own value (or a no-op) where a majority reported an "
            "accepted one: a chosen value is replaced"
        ),
        "promise-not-persisted": (
            "a promise is answered before it is durable (it never reaches the Ready's "
            "persist part): a restarted acceptor promises lower ballots again"
        ),
        "read-without-confirm": (
            "a read barrier is answered without confirming the ballot with a majority: a "
            "deposed leader serves stale reads"
        ),
        "decide-without-majority": (
            "a leader decides a slot one acceptance short of a majority: a value no "
            "majority accepted is applied"
        ),
    }
)


def unknown_bugs(names: Iterable[str]) -> list[str]:
    """The names in `names` that the catalogue does not hold, sorted."""
    return core_unknown_bugs(names, CATALOGUE)


@dataclass(frozen=True, slots=True)
class PlantedBugs:
    """One flag per catalogued bug; all False in a correct core."""

    accept_lower_ballot: bool = False
    ignore_accepted_value: bool = False
    promise_not_persisted: bool = False
    decide_without_majority: bool = False
    read_without_confirm: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> PlantedBugs:
        return cls(**planted_flags(names, CATALOGUE))
