"""Known mistakes that can be planted in the transaction cores, so that the simulator can
prove it finds them. With none planted the cores behave exactly as without these hooks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

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


@dataclass(frozen=True, slots=True)
class PlantedBugs:
    commit_before_log: bool = False
    unilateral_abort_after_yes: bool = False
    forget_locks_on_restart: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> PlantedBugs:
        chosen = frozenset(names)
        unknown = sorted(name for name in chosen if name not in CATALOGUE)
        if unknown:
            raise ValueError(f"unknown planted bugs {unknown}; known: {sorted(CATALOGUE)}")
        return cls(**{name.replace("-", "_"): True for name in chosen})
