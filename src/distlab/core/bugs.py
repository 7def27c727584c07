"""Planted bugs, shared by every protocol's catalogue: the names a simulator run plants, as
the flags of a core's `PlantedBugs` (one boolean field per catalogued name, `-` as `_`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def unknown_bugs(names: Iterable[str], catalogue: Mapping[str, str]) -> list[str]:
    """The names in `names` that `catalogue` does not hold, sorted."""
    return sorted(name for name in names if name not in catalogue)


def planted_flags(names: Iterable[str], catalogue: Mapping[str, str]) -> dict[str, bool]:
    """The keyword arguments that plant `names` (every one set True); ValueError naming the
    unknown ones and the known."""
    chosen = frozenset(names)
    unknown = unknown_bugs(chosen, catalogue)
    if unknown:
        raise ValueError(f"unknown planted bugs {unknown}; known: {sorted(catalogue)}")
    return {name.replace("-", "_"): True for name in chosen}
