"""One consensus group's messages over the node's peer transport, whichever its engine.

A group's core talks to its peers in its engine's messages; the node's `PeerTransport`
carries bytes for every instance. This is the translation both ways, given the engine's
`PeerCodec`: `GroupTransport` encodes what the core sends (a snapshot as a bulk transfer,
whose outcome goes back to the core as etcd's ReportSnapshot), and `GroupReceiver` decodes
what the router delivers, rejecting a message that is malformed or that claims to come from
another node than the stream it arrived on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context

from distlab.core.ids import NodeId
from distlab.runtime.grpc.peer_codec import MalformedMessage
from distlab.runtime.peer import MalformedPayload, PeerRouter, PeerTransport


@dataclass(frozen=True, slots=True)
class PeerCodec:
    """An engine's messages on the peer transport: the envelopes' service name, the
    conversions to and from bytes (decode raises MalformedMessage), and the message type
    that is a snapshot, sent as a bulk transfer."""

    service: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    snapshot_type: type


class GroupTransport:
    """The sending side of group `group`: `send` never waits."""

    def __init__(self, peer: PeerTransport, codec: PeerCodec, group: int,
                 report_snapshot: Callable[[NodeId, bool], None]) -> None:
        self._peer = peer
        self._codec = codec
        self.group = group
        self._report_snapshot = report_snapshot

    def send(self, message: Any, trace_context: otel_context.Context | None = None) -> None:
        codec = self._codec
        recipient: NodeId = message.recipient
        if isinstance(message, codec.snapshot_type):
            self._peer.send_bulk(recipient, codec.service, self.group, codec.encode(message),
                                 lambda accepted: self._report_snapshot(recipient, accepted))
        else:
            self._peer.send(recipient, codec.service, self.group, codec.encode(message),
                            trace_context)


class GroupReceiver:
    """The receiving side of one group on node `node_id`: the router's deliver functions."""

    def __init__(self, node_id: NodeId, codec: PeerCodec, deliver: Callable[[Any], bool]
                 ) -> None:
        self._node_id = node_id
        self._codec = codec
        self._deliver = deliver

    def register(self, router: PeerRouter, group: int) -> None:
        router.register(self._codec.service, group, self.deliver, self.deliver_bulk)

    def deliver(self, sender: NodeId, payload: bytes) -> bool:
        """Hand the message in `payload` to the core; False when its inbox is full."""
        return self._deliver(self._decode(sender, payload))

    def deliver_bulk(self, sender: NodeId, payload: bytes) -> bool:
        message = self._decode(sender, payload)
        if not isinstance(message, self._codec.snapshot_type):
            raise MalformedPayload(f"a {type(message).__name__} sent as a bulk transfer")
        return self._deliver(message)

    def _decode(self, sender: NodeId, payload: bytes) -> Any:
        try:
            message = self._codec.decode(payload)
        except MalformedMessage as error:
            raise MalformedPayload(str(error)) from error
        if message.sender != sender:
            raise MalformedPayload(
                f"a message from node {message.sender} on node {sender}'s stream")
        if message.recipient != self._node_id:
            raise MalformedPayload(
                f"a message for node {message.recipient} delivered to node {self._node_id}")
        return message
