"""Vector clocks of a simulated run, written as the nodes' ShiViz log.

The network's observer: each simulated node is one process with one clock, whatever group a
message is for, as a real node is. A node's clock outlives its crashes, as its disk does: the
restarted node follows the one that crashed (it reads what that one wrote), and ShiViz then
draws one line per node. Each event's description ends with the virtual time it happened at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distlab.core.ids import NodeId
from distlab.core.vclock import VectorClock
from distlab.core.vclock_log import MessageClock, host_name
from distlab.sim.network import MessageKinds


class SimVectorClocks:
    """Implements the network's `MessageObserver`: stamps sends, merges receipts, logs both."""

    def __init__(self, service: str, kinds: MessageKinds, now: Callable[[], float],
                 log: Callable[[str], object]) -> None:
        self._service = service
        self._kinds = kinds
        self._now = now
        self._log = log
        self.clocks: dict[NodeId, MessageClock] = {}

    def _clock(self, node: NodeId) -> MessageClock:
        clock = self.clocks.get(node)
        if clock is None:
            clock = self.clocks[node] = MessageClock(host_name(node), self._log)
        return clock

    def _what(self, message: Any) -> Callable[[], str]:
        return lambda: f"{self._kinds.describe(message)} (t={self._now() * 1000.0:.3f} ms)"

    def sent(self, group: int, message: Any) -> VectorClock:
        kinds = self._kinds
        return self._clock(kinds.sender(message)).sent(
            self._service, group, host_name(kinds.recipient(message)), self._what(message))

    def received(self, group: int, message: Any, stamp: Any) -> None:
        kinds = self._kinds
        self._clock(kinds.recipient(message)).received(
            self._service, group, host_name(kinds.sender(message)), stamp, self._what(message))
