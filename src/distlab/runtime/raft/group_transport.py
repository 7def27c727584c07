"""One Raft group's messages over the node's peer transport.

A group's core talks to its peers in `raft.Message`s; the node's `PeerTransport` carries bytes
for every instance. This is the translation both ways: `RaftGroupTransport` encodes what the
core sends (a snapshot as a bulk transfer, whose outcome goes back to the core as etcd's
ReportSnapshot), and `RaftGroupReceiver` decodes what the router delivers, rejecting a message
that is malformed or that claims to come from another node than the stream it arrived on.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import context as otel_context

from distlab.core.ids import NodeId
from distlab.protocols import raft
from distlab.runtime.grpc.raft_codec import MalformedMessage, decode, encode
from distlab.runtime.peer import MalformedPayload, PeerRouter, PeerTransport

RAFT_SERVICE = "raft"


class RaftGroupTransport:
    """The sending side of group `group`: `send` never waits."""

    def __init__(self, peer: PeerTransport, group: int,
                 report_snapshot: Callable[[NodeId, bool], None]) -> None:
        self._peer = peer
        self.group = group
        self._report_snapshot = report_snapshot

    def send(self, message: raft.Message, trace_context: otel_context.Context | None = None
             ) -> None:
        recipient = message.recipient
        if isinstance(message, raft.InstallSnapshot):
            self._peer.send_bulk(recipient, RAFT_SERVICE, self.group, encode(message),
                                 lambda accepted: self._report_snapshot(recipient, accepted))
        else:
            self._peer.send(recipient, RAFT_SERVICE, self.group, encode(message), trace_context)


class RaftGroupReceiver:
    """The receiving side of one group on node `node_id`: the router's deliver functions."""

    def __init__(self, node_id: NodeId, deliver: Callable[[raft.Message], bool]) -> None:
        self._node_id = node_id
        self._deliver = deliver

    def register(self, router: PeerRouter, group: int) -> None:
        router.register(RAFT_SERVICE, group, self.deliver, self.deliver_bulk)

    def deliver(self, sender: NodeId, payload: bytes) -> bool:
        """Hand the message in `payload` to the core; False when its inbox is full."""
        return self._deliver(self._decode(sender, payload))

    def deliver_bulk(self, sender: NodeId, payload: bytes) -> bool:
        message = self._decode(sender, payload)
        if not isinstance(message, raft.InstallSnapshot):
            raise MalformedPayload(f"a {type(message).__name__} sent as a bulk transfer")
        return self._deliver(message)

    def _decode(self, sender: NodeId, payload: bytes) -> raft.Message:
        try:
            message = decode(payload)
        except MalformedMessage as error:
            raise MalformedPayload(str(error)) from error
        if message.sender != sender:
            raise MalformedPayload(
                f"a message from node {message.sender} on node {sender}'s stream")
        if message.recipient != self._node_id:
            raise MalformedPayload(
                f"a message for node {message.recipient} delivered to node {self._node_id}")
        return message
