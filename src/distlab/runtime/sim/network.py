"""A seeded, lossy network between simulated nodes.

Delivery is decided when a message is sent (drop, duplicate, delay) and checked again when it
arrives (a link cut while the message was in flight loses it), like the 6.5840 lab's labrpc.
Requests and replies are told apart so that their loss rates can differ, and the lab's "long
reordering" mode holds most replies back for 200-2200 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from distlab.core.ids import NodeId


@dataclass(frozen=True, slots=True)
class NetworkConditions:
    name: str
    min_delay_ms: int = 1
    max_delay_ms: int = 1
    drop_requests: float = 0.0
    drop_replies: float = 0.0
    duplicate: float = 0.0
    long_reordering: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_delay_ms <= self.max_delay_ms:
            raise ValueError("delays must satisfy 0 <= min <= max")
        for rate in (self.drop_requests, self.drop_replies, self.duplicate):
            if not 0.0 <= rate < 1.0:
                raise ValueError("rates are probabilities below 1")


RELIABLE = NetworkConditions("reliable")
# labrpc's unreliable mode: up to 27 ms of delay, 10% of requests and 10% of replies lost.
UNRELIABLE = NetworkConditions("unreliable", 0, 27, drop_requests=0.1, drop_replies=0.1)
LONG_REORDERING = NetworkConditions("long-reordering", 0, 27, long_reordering=True)
UNRELIABLE_LONG_REORDERING = NetworkConditions(
    "unreliable+long-reordering", 0, 27, drop_requests=0.1, drop_replies=0.1,
    long_reordering=True,
)
DUPLICATING = NetworkConditions("duplicating", 0, 10, duplicate=0.1)

PRESETS: dict[str, NetworkConditions] = {
    conditions.name: conditions
    for conditions in (RELIABLE, UNRELIABLE, LONG_REORDERING, UNRELIABLE_LONG_REORDERING,
                       DUPLICATING)
}


class Network:
    """Connectivity and loss between nodes. Links are directional; cutting both ways is a
    symmetric partition, one way an asymmetric one."""

    def __init__(self, rng: Random, conditions: NetworkConditions = RELIABLE) -> None:
        self._rng = rng
        self.conditions = conditions
        self._blocked: set[tuple[NodeId, NodeId]] = set()
        self._disconnected: set[NodeId] = set()

    # --- topology ---

    def disconnect(self, node: NodeId) -> None:
        """Cuts every link to and from `node` (the lab's `disconnect`)."""
        self._disconnected.add(node)

    def connect(self, node: NodeId) -> None:
        self._disconnected.discard(node)

    def is_connected(self, node: NodeId) -> bool:
        return node not in self._disconnected

    def block(self, source: NodeId, destination: NodeId) -> None:
        self._blocked.add((source, destination))

    def unblock(self, source: NodeId, destination: NodeId) -> None:
        self._blocked.discard((source, destination))

    def partition(self, groups: list[list[NodeId]]) -> None:
        """Only nodes in the same group can talk; replaces earlier link blocks."""
        self._blocked.clear()
        for group in groups:
            for other in groups:
                if other is group:
                    continue
                for source in group:
                    for destination in other:
                        self._blocked.add((source, destination))

    def heal(self) -> None:
        self._blocked.clear()
        self._disconnected.clear()

    def can_deliver(self, source: NodeId, destination: NodeId) -> bool:
        return (
            source not in self._disconnected
            and destination not in self._disconnected
            and (source, destination) not in self._blocked
        )

    def describe_topology(self) -> str:
        parts = []
        if self._disconnected:
            parts.append("disconnected=" + ",".join(f"n{n}" for n in sorted(self._disconnected)))
        if self._blocked:
            parts.append(
                "blocked=" + ",".join(f"n{a}->n{b}" for a, b in sorted(self._blocked))
            )
        return " ".join(parts) or "fully connected"

    # --- fate of one message ---

    def delays_for(self, is_request: bool) -> list[int]:
        """Delivery delays in ms: [] when the message is lost, two when it is duplicated."""
        conditions = self.conditions
        rng = self._rng
        drop = conditions.drop_requests if is_request else conditions.drop_replies
        if drop and rng.random() < drop:
            return []
        delay = rng.randint(conditions.min_delay_ms, conditions.max_delay_ms)
        if conditions.long_reordering and not is_request and rng.randrange(900) < 600:
            delay += 200 + rng.randrange(1 + rng.randrange(2000))
        if conditions.duplicate and rng.random() < conditions.duplicate:
            return [delay, rng.randint(conditions.min_delay_ms, conditions.max_delay_ms * 3)]
        return [delay]
