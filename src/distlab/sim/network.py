"""A seeded, faulty network between simulated nodes, delivering on the virtual-time loop.

Delivery is decided when a message is sent (drop, duplicate, delay: messages overtake each
other whenever their delays cross) and checked again when it arrives (a link cut while the
message was in flight loses it), like the 6.5840 lab's labrpc. Requests and replies are told
apart so that their loss rates can differ, and the lab's "long reordering" mode holds most
replies back for 200-2200 ms.

The network also plays the peer transport's part in reporting back to the sender's driver,
as the real one does (etcd's ReportUnreachable / ReportSnapshot): a send that finds its peer
cut off or down reports it unreachable, once until the link carries a message again; a
snapshot that arrives reports success, one that is lost reports failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any, Protocol

from distlab.core.ids import NodeId


@dataclass(frozen=True, slots=True)
class NetworkConditions:
    name: str
    min_delay_ms: float = 1
    max_delay_ms: float = 1
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
# The 6.824 (2015) labs' unreliable mode (Paxos, kvpaxos, shardkv): a server discards 10% of
# the requests it receives, and of those it serves, loses 20% of the replies. Their RPCs went
# over local sockets, so delays stay as on the reliable network. Not among the presets a run
# draws from, so that existing seeds keep their plans.
UNRELIABLE_2015 = NetworkConditions("unreliable-2015", drop_requests=0.1, drop_replies=0.2)
# Wide delays and no loss: messages overtake each other all the time.
REORDERING = NetworkConditions("reordering", 0, 60)

PRESETS: dict[str, NetworkConditions] = {
    conditions.name: conditions
    for conditions in (RELIABLE, UNRELIABLE, LONG_REORDERING, UNRELIABLE_LONG_REORDERING,
                       DUPLICATING, REORDERING)
}


class Topology:
    """Who can reach whom. Links are directional; cutting both ways is a symmetric
    partition, one way an asymmetric one."""

    def __init__(self) -> None:
        self._blocked: set[tuple[NodeId, NodeId]] = set()
        self._disconnected: set[NodeId] = set()

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

    def describe(self) -> str:
        parts = []
        if self._disconnected:
            parts.append("disconnected=" + ",".join(f"n{n}" for n in sorted(self._disconnected)))
        if self._blocked:
            parts.append("blocked=" + ",".join(f"n{a}->n{b}" for a, b in sorted(self._blocked)))
        return " ".join(parts) or "fully connected"


class MessageKinds(Protocol):
    """What the network needs to know about a protocol's messages."""

    def sender(self, message: Any) -> NodeId: ...

    def recipient(self, message: Any) -> NodeId: ...

    def is_request(self, message: Any) -> bool: ...

    def is_snapshot(self, message: Any) -> bool: ...

    def describe(self, message: Any) -> str: ...


@dataclass(frozen=True, slots=True)
class AddressedMessageKinds:
    """`MessageKinds` for a protocol whose messages name their `sender` and `recipient`
    (every engine's do): the rest is the protocol's own."""

    requests: Callable[[Any], bool]
    snapshot_type: type
    describe_message: Callable[[Any], str]

    def sender(self, message: Any) -> NodeId:
        sender: NodeId = message.sender
        return sender

    def recipient(self, message: Any) -> NodeId:
        recipient: NodeId = message.recipient
        return recipient

    def is_request(self, message: Any) -> bool:
        return self.requests(message)

    def is_snapshot(self, message: Any) -> bool:
        return type(message) is self.snapshot_type

    def describe(self, message: Any) -> str:
        return self.describe_message(message)


class Endpoint(Protocol):
    """One instance as the network sees it: where messages go, where reports go."""

    def deliver(self, message: Any) -> bool: ...

    def report_unreachable(self, peer: NodeId) -> None: ...

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None: ...


class MessageObserver(Protocol):
    """Sees every message as it is sent and as it arrives (vector clocks, for instance):
    what `sent` returns travels with the message and is handed to `received`."""

    def sent(self, group: int, message: Any) -> Any: ...

    def received(self, group: int, message: Any, stamp: Any) -> None: ...


# A link that carries more than this many messages of one group in one window is in a storm:
# a sound protocol sends a bounded number per round trip (heartbeats, a window of appends),
# far below it; a core that answers every message with more messages does not.
STORM_WINDOW_SECONDS = 0.1
STORM_MESSAGES = 400


class Network:
    """Carries messages between instances, `group` by `group`, on the virtual-time loop."""

    def __init__(
        self,
        *,
        rng: Random,
        kinds: MessageKinds,
        endpoint: Callable[[NodeId, int], Endpoint | None],
        call_later: Callable[..., Any],
        now: Callable[[], float],
        note: Callable[[str], None] | None,
        on_storm: Callable[[str], None],
        conditions: NetworkConditions = RELIABLE,
        observer: MessageObserver | None = None,
    ) -> None:
        self._rng = rng
        self._observer = observer
        self._kinds = kinds
        self._endpoint = endpoint
        self._call_later = call_later
        self._now = now
        self._note = note
        self._on_storm = on_storm
        self._traffic: dict[tuple[NodeId, NodeId, int], list[int]] = {}
        self.conditions = conditions
        self.topology = Topology()
        self._reported_unreachable: set[tuple[NodeId, int, NodeId]] = set()
        self.requests_sent = 0
        self.messages_sent = 0
        self.messages_lost = 0
        self.sent_by_type: Counter[str] = Counter()

    def send(self, group: int, message: Any) -> None:
        kinds = self._kinds
        sender, recipient = kinds.sender(message), kinds.recipient(message)
        request = kinds.is_request(message)
        self.messages_sent += 1
        self.sent_by_type[type(message).__name__] += 1
        self._count(sender, recipient, group)
        if request:
            self.requests_sent += 1
        # Observed before anything can lose it: a lost message is a send without a receive.
        stamp = self._observer.sent(group, message) if self._observer is not None else None
        reachable = self.topology.can_deliver(sender, recipient)
        target = self._endpoint(recipient, group) if reachable else None
        if target is None:
            self._lost(group, message, sender, recipient,
                       "link down" if not reachable else f"n{recipient} down")
            self._report_unreachable(sender, group, recipient)
            return
        delays = self._delays_for(request)
        if not delays:
            self._lost(group, message, sender, recipient, "lost")
            return
        for delay_ms in delays:
            self._call_later(delay_ms / 1000.0, self._arrive, group, message, stamp)

    def _count(self, sender: NodeId, recipient: NodeId, group: int) -> None:
        window = int(self._now() / STORM_WINDOW_SECONDS)
        traffic = self._traffic.get((sender, recipient, group))
        if traffic is None:
            self._traffic[(sender, recipient, group)] = [window, 1]
        elif traffic[0] != window:
            traffic[0], traffic[1] = window, 1
        else:
            traffic[1] += 1
            if traffic[1] == STORM_MESSAGES:
                self._on_storm(
                    f"message storm: n{sender}->n{recipient} carried {STORM_MESSAGES} messages "
                    f"of group {group} within {STORM_WINDOW_SECONDS * 1000:.0f} ms")

    def _arrive(self, group: int, message: Any, stamp: Any = None) -> None:
        kinds = self._kinds
        sender, recipient = kinds.sender(message), kinds.recipient(message)
        target = (self._endpoint(recipient, group)
                  if self.topology.can_deliver(sender, recipient) else None)
        if target is not None and self._observer is not None:
            # It reached the node (which may still find its inbox full): a receive, stamped
            # before the instance sees it, so that what it sends in answer comes after.
            self._observer.received(group, message, stamp)
        if target is None or not target.deliver(message):
            self._lost(group, message, sender, recipient,
                       "cut in flight" if target is None else "inbox full")
            return
        self._reported_unreachable.discard((sender, group, recipient))
        if self._note is not None:
            self._note(f"n{sender}->n{recipient} g{group} {kinds.describe(message)}")
        if kinds.is_snapshot(message):
            source = self._endpoint(sender, group)
            if source is not None:
                source.report_snapshot(recipient, True)

    def _lost(self, group: int, message: Any, sender: NodeId, recipient: NodeId,
              why: str) -> None:
        self.messages_lost += 1
        if self._note is not None:
            self._note(f"n{sender}->n{recipient} g{group} {self._kinds.describe(message)} "
                       f"dropped ({why})")
        if self._kinds.is_snapshot(message):
            source = self._endpoint(sender, group)
            if source is not None:
                source.report_snapshot(recipient, False)

    def _report_unreachable(self, sender: NodeId, group: int, recipient: NodeId) -> None:
        key = (sender, group, recipient)
        if key in self._reported_unreachable:
            return
        source = self._endpoint(sender, group)
        if source is not None:
            self._reported_unreachable.add(key)
            source.report_unreachable(recipient)

    def _delays_for(self, is_request: bool) -> list[float]:
        """Delivery delays in ms: [] when the message is lost, two when it is duplicated."""
        conditions = self.conditions
        rng = self._rng
        drop = conditions.drop_requests if is_request else conditions.drop_replies
        if drop and rng.random() < drop:
            return []
        low, high = conditions.min_delay_ms, conditions.max_delay_ms
        delay = low + (high - low) * rng.random()
        if conditions.long_reordering and not is_request and rng.randrange(900) < 600:
            delay += 200 + rng.randrange(1 + rng.randrange(2000))
        if conditions.duplicate and rng.random() < conditions.duplicate:
            return [delay, low + (3 * high - low) * rng.random()]
        return [delay]
