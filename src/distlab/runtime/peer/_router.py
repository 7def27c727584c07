"""Hands each envelope that arrives from a peer to the protocol instance it is for."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from distlab.core.ids import NodeId
from distlab.runtime.peer._metrics import count_rejected

log = logging.getLogger(__name__)

# (sender, payload) -> whether the instance took it; False when its inbox is full.
Deliver = Callable[[NodeId, bytes], bool]

# The label for envelopes of a service nobody registered: a peer must not be able to mint
# label values.
UNKNOWN_SERVICE = "unknown"


class MalformedPayload(ValueError):
    """Raised by a deliver function for a payload that is not a valid message of its protocol."""


class Delivery(enum.Enum):
    ACCEPTED = "accepted"
    UNKNOWN_INSTANCE = "unknown_instance"
    MALFORMED = "malformed"
    NOT_ACCEPTED = "not_accepted"


@dataclass(frozen=True, slots=True)
class _Route:
    deliver: Deliver
    deliver_bulk: Deliver


class PeerRouter:
    """(service, group) -> the instance's deliver functions.

    A peer's envelope for an instance this node does not run, or one its instance cannot
    decode, is counted and dropped: a bad peer message never crashes the node.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, int], _Route] = {}
        self._services: dict[str, int] = {}  # service -> instances registered
        self._warned: set[tuple[NodeId, str]] = set()

    def register(self, service: str, group: int, deliver: Deliver, deliver_bulk: Deliver) -> None:
        """Route `service`'s envelopes for `group` to `deliver`, its bulk transfers to
        `deliver_bulk`. Both run on the event loop and must not block; they return False
        when the instance cannot take the payload now, and raise MalformedPayload for one it
        cannot decode."""
        if not service:
            raise ValueError("a service has a name")
        if group < 0:
            raise ValueError(f"groups are numbered from 0, got {group}")
        key = (service, group)
        if key in self._routes:
            raise ValueError(f"{service} group {group} is registered already")
        self._routes[key] = _Route(deliver, deliver_bulk)
        self._services[service] = self._services.get(service, 0) + 1

    def unregister(self, service: str, group: int) -> None:
        del self._routes[service, group]
        self._services[service] -= 1
        if not self._services[service]:
            del self._services[service]

    def label(self, service: str) -> str:
        """`service` as a metric label: itself when registered here."""
        return service if service in self._services else UNKNOWN_SERVICE

    def deliver(self, sender: NodeId, service: str, group: int, payload: bytes) -> Delivery:
        route = self._routes.get((service, group))
        if route is None:
            return self._unknown(sender, service, group)
        return self._hand_over(route.deliver, sender, service, group, payload)

    def deliver_bulk(self, sender: NodeId, service: str, group: int, payload: bytes) -> Delivery:
        route = self._routes.get((service, group))
        if route is None:
            return self._unknown(sender, service, group)
        return self._hand_over(route.deliver_bulk, sender, service, group, payload)

    def _hand_over(self, deliver: Deliver, sender: NodeId, service: str, group: int,
                   payload: bytes) -> Delivery:
        try:
            if deliver(sender, payload):
                return Delivery.ACCEPTED
        except MalformedPayload as error:
            count_rejected(service, Delivery.MALFORMED.value)
            # Once per peer and service: a peer running an incompatible version would
            # otherwise fill the log with one line per message.
            if (sender, service) not in self._warned:
                self._warned.add((sender, service))
                log.warning("node %d sent %s group %d a malformed message: %s", sender, service,
                            group, error)
            return Delivery.MALFORMED
        count_rejected(service, Delivery.NOT_ACCEPTED.value)
        return Delivery.NOT_ACCEPTED

    def _unknown(self, sender: NodeId, service: str, group: int) -> Delivery:
        count_rejected(self.label(service), Delivery.UNKNOWN_INSTANCE.value)
        log.debug("node %d sent a message for %s group %d, which this node does not run",
                  sender, service, group)
        return Delivery.UNKNOWN_INSTANCE
