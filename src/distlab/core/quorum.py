"""Quorum arithmetic, kept in one place so every protocol counts the same way."""

from collections.abc import Collection, Hashable, Iterable


def majority(cluster_size: int) -> int:
    """The smallest number of members that forms a majority of `cluster_size`."""
    if cluster_size < 1:
        raise ValueError(f"a cluster has at least one member, not {cluster_size}")
    return cluster_size // 2 + 1


def has_quorum(voters: Collection[Hashable], granted: Iterable[Hashable]) -> bool:
    """Whether the members in `granted` that are also `voters` form a majority of `voters`."""
    members = set(voters)
    return len(members.intersection(granted)) >= majority(len(members))


def quorum_index(match_indexes: Iterable[int]) -> int:
    """The highest index that a majority of members has reached.

    Sorting descending and taking the majority-th value gives the index that at least a
    majority holds; any higher index is held by fewer than a majority.
    """
    ordered = sorted(match_indexes, reverse=True)
    if not ordered:
        raise ValueError("quorum_index needs at least one member")
    return ordered[majority(len(ordered)) - 1]
