"""Known mistakes that can be planted in the real core, so a simulator can prove it finds them.

Each name is checked at the one place in the core where that mistake would be made; with no
bug planted the core behaves exactly as it would without these hooks. `Config.planted_bugs`
names the bugs to plant; `PlantedBugs` turns the names into flags once, at construction, so
the checks on busy paths are a single attribute test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from distlab.core.bugs import planted_flags
from distlab.core.bugs import unknown_bugs as core_unknown_bugs

CATALOGUE: Mapping[str, str] = MappingProxyType(
    {
        "old-term-commit": (
            "a leader commits an entry of an older term by counting replicas "
            "(Figure 8 of the Raft paper): a committed entry can be overwritten"
        ),
        "stale-vote-count": (
            "a candidate counts a vote granted in an older term: two leaders in one term"
        ),
        "vote-not-persisted": (
            "a vote is granted before it is durable (it never reaches the hard state), "
            "so a restarted voter votes twice in one term"
        ),
        "no-prev-log-check": (
            "a follower accepts AppendEntries whose previous entry does not match its log: "
            "logs diverge below entries the leader counts as replicated"
        ),
        "no-up-to-date-check": (
            "a vote is granted to a candidate whose log is behind: a leader without "
            "committed entries overwrites them"
        ),
        "truncate-on-stale-append": (
            "a reordered old AppendEntries truncates matching entries a newer one wrote: "
            "an acknowledged, committed entry disappears"
        ),
        "read-without-confirm": (
            "ReadIndex is served without a heartbeat round: a deposed leader serves stale reads"
        ),
        "ack-before-persist": (
            "a follower's AppendEntries acknowledgement may leave before its entries are "
            "durable: a crash loses entries the leader counted as committed"
        ),
    }
)


def unknown_bugs(names: Iterable[str]) -> list[str]:
    """The names in `names` that the catalogue does not hold, sorted."""
    return core_unknown_bugs(names, CATALOGUE)


@dataclass(frozen=True, slots=True)
class PlantedBugs:
    """One flag per catalogued bug; all False in a correct core."""

    old_term_commit: bool = False
    stale_vote_count: bool = False
    vote_not_persisted: bool = False
    no_prev_log_check: bool = False
    no_up_to_date_check: bool = False
    truncate_on_stale_append: bool = False
    read_without_confirm: bool = False
    ack_before_persist: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> PlantedBugs:
        return cls(**planted_flags(names, CATALOGUE))

