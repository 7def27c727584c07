"""The router hands each payload to its instance and counts what it cannot deliver."""

from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.runtime.peer import Deliver, Delivery, MalformedPayload, PeerRouter, _metrics

PEER = NodeId(2)


def rejected(service: str, reason: str) -> float:
    return _metrics.MESSAGES_REJECTED.labels(service, reason)._value.get()


def test_each_payload_goes_to_its_instance_and_what_cannot_is_counted() -> None:
    router = PeerRouter()
    streamed: list[tuple[int, NodeId, bytes]] = []
    bulk: list[tuple[int, NodeId, bytes]] = []
    inbox_full = False

    def deliverer(group: int, into: list[tuple[int, NodeId, bytes]]) -> Deliver:
        def deliver(sender: NodeId, payload: bytes) -> bool:
            if payload == b"garbage":
                raise MalformedPayload("not a message")
            if inbox_full:
                return False
            into.append((group, sender, payload))
            return True
        return deliver

    for group in (0, 1):
        router.register("svc", group, deliverer(group, streamed), deliverer(group, bulk))
    before = {reason: rejected("svc", reason)
              for reason in ("unknown_instance", "malformed", "not_accepted")}
    unknown_service = rejected("unknown", "unknown_instance")

    assert router.deliver(PEER, "svc", 1, b"m") is Delivery.ACCEPTED
    assert router.deliver_bulk(PEER, "svc", 0, b"b") is Delivery.ACCEPTED
    assert router.deliver(PEER, "svc", 2, b"m") is Delivery.UNKNOWN_INSTANCE
    assert router.deliver(PEER, "other", 0, b"m") is Delivery.UNKNOWN_INSTANCE
    assert router.deliver(PEER, "svc", 0, b"garbage") is Delivery.MALFORMED
    inbox_full = True
    assert router.deliver(PEER, "svc", 0, b"m") is Delivery.NOT_ACCEPTED

    assert streamed == [(1, PEER, b"m")] and bulk == [(0, PEER, b"b")]
    assert {reason: rejected("svc", reason) - count for reason, count in before.items()} == {
        "unknown_instance": 1, "malformed": 1, "not_accepted": 1}
    assert rejected("unknown", "unknown_instance") - unknown_service == 1


def test_an_instance_is_registered_once_until_unregistered() -> None:
    router = PeerRouter()
    router.register("svc", 0, lambda sender, payload: True, lambda sender, payload: True)
    with pytest.raises(ValueError, match="registered already"):
        router.register("svc", 0, lambda sender, payload: True, lambda sender, payload: True)
    assert router.label("svc") == "svc"
    router.unregister("svc", 0)
    assert router.deliver(PEER, "svc", 0, b"m") is Delivery.UNKNOWN_INSTANCE
    assert router.label("svc") == "unknown"
    router.register("svc", 0, lambda sender, payload: True, lambda sender, payload: True)
    assert router.deliver(PEER, "svc", 0, b"m") is Delivery.ACCEPTED
