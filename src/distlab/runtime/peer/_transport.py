"""The sending half of the node's peer transport: one sender, and one stream, per peer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from opentelemetry import context as otel_context

from distlab.core.ids import NodeId
from distlab.proto import peer_pb2_grpc
from distlab.runtime.config import Address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.peer._clocks import PeerClock
from distlab.runtime.peer._handshake import DEFAULT_ENGINE, Handshake
from distlab.runtime.peer._metrics import BULK_TRANSFERS, count_sent
from distlab.runtime.peer._sender import MAX_ENVELOPE_BYTES, PeerSender

log = logging.getLogger(__name__)

MAX_GROUP = (1 << 32) - 1  # an envelope's group is a uint32


class PeerTransport:
    """Carries every protocol instance's messages from this node to its peers.

    `send` never waits: each peer has a bounded queue drained by its own task onto one
    long-lived stream, shared by every instance on the node. A full queue drops the newest
    envelope and a broken stream drops what was on it; the protocols tolerate both (they
    resend), so a slow or dead peer never holds up an instance or the other peers. A peer is
    reported unreachable to the listeners each time its stream breaks or cannot be opened.

    With `clock`, every send is an event of the node's vector clock, whose stamp the envelope
    carries; without, nothing of it is computed or sent.
    """

    def __init__(self, node_id: NodeId, groups: int, channels: PeerChannels, *,
                 engine: str = DEFAULT_ENGINE, clock: PeerClock | None = None) -> None:
        if groups < 1:
            raise ValueError(f"a node runs at least one group, not {groups}")
        self.node_id = node_id
        self.groups = groups
        self.engine = engine
        self.clock = clock
        self._channels = channels
        self._senders: dict[NodeId, PeerSender] = {}
        self._unreachable_listeners: list[Callable[[NodeId], None]] = []
        # Nodes already warned about for want of an address, until one is learnt.
        self._no_address_warned: set[NodeId] = set()
        # Peers this node is cut off from by an injected fault: nothing is sent to them, and
        # the servicer drops what they send.
        self.isolated_from: frozenset[NodeId] = frozenset()
        self._closed = False

    def learn_address(self, node: NodeId, address: Address | str) -> None:
        self._channels.add(node, address)
        self._no_address_warned.discard(node)

    def add_unreachable_listener(self, callback: Callable[[NodeId], None]) -> None:
        """Call `callback(peer)`, on the event loop, whenever the stream to `peer` breaks or
        cannot be opened (a protocol core's ReportUnreachable)."""
        self._unreachable_listeners.append(callback)

    @property
    def streams_open(self) -> frozenset[NodeId]:
        """The peers this node holds an accepted stream to (until a write finds it broken)."""
        return frozenset(peer for peer, sender in self._senders.items() if sender.stream_open)

    def send(self, recipient: NodeId, service: str, group: int, payload: bytes,
             trace_context: otel_context.Context | None = None) -> None:
        """Queue `payload` for `service`'s instance `group` on `recipient`. With
        `trace_context`, the operation it belongs to, the send and the receipt are spans of
        that operation's trace."""
        if not 0 <= group <= MAX_GROUP:
            raise ValueError(f"group {group} is not a uint32")
        # Stamped before anything can drop it: the protocol did send it, and a message the
        # network then loses is a send without a receive.
        stamp = (self.clock.on_send(recipient, service, group, payload)
                 if self.clock is not None else None)
        if recipient in self.isolated_from:
            count_sent(service, "partitioned")
            return
        if len(payload) > MAX_ENVELOPE_BYTES:
            count_sent(service, "oversized")
            log.warning("a %d-byte %s message for node %d is too large for a peer stream; "
                        "dropped", len(payload), service, recipient)
            return
        sender = self._senders.get(recipient) or self._start_sender(recipient)
        if sender is None:
            count_sent(service, "closed" if self._closed else "no_address")
        elif not sender.enqueue((service, group, payload, trace_context, stamp)):
            count_sent(service, "dropped")

    def send_bulk(self, recipient: NodeId, service: str, group: int, payload: bytes,
                  on_done: Callable[[bool], None]) -> None:
        """Stream `payload` (a snapshot) to `service`'s instance `group` on `recipient`, in
        chunks, with a deadline; one transfer at a time per peer and instance. `on_done` is
        called once, later, on the event loop: True when the peer's instance took the
        payload, False when it did not arrive or was refused (another transfer to the same
        instance still under way included). It is not called for a transfer under way when
        the transport closes."""
        if not 0 <= group <= MAX_GROUP:
            raise ValueError(f"group {group} is not a uint32")
        stamp = (self.clock.on_send(recipient, service, group, payload)
                 if self.clock is not None else None)
        sender = None
        if recipient in self.isolated_from:
            BULK_TRANSFERS.labels(service, "partitioned").inc()
        else:
            sender = self._senders.get(recipient) or self._start_sender(recipient)
            if sender is None:
                BULK_TRANSFERS.labels(service, "closed" if self._closed else "no_address").inc()
        if sender is None:
            asyncio.get_running_loop().call_soon(on_done, False)
            return
        sender.send_bulk(service, group, payload, on_done, stamp)

    def _start_sender(self, recipient: NodeId) -> PeerSender | None:
        if recipient == self.node_id:
            raise ValueError(f"node {recipient} is this node")
        if self._closed:
            return None  # what an instance sends while the node shuts down goes nowhere
        if recipient not in self._channels.peers:
            if recipient not in self._no_address_warned:
                self._no_address_warned.add(recipient)
                log.warning("no address for node %d; dropping what is sent to it", recipient)
            return None
        sender = self._senders[recipient] = PeerSender(
            Handshake(self.node_id, recipient, self.groups, self.engine),
            # Looked up on every call: a member's address can change.
            lambda: peer_pb2_grpc.PeerStub(self._channels.get(recipient)),
            lambda: recipient in self.isolated_from,
            self._report_unreachable,
        )
        return sender

    def _report_unreachable(self, peer: NodeId) -> None:
        for listener in self._unreachable_listeners:
            try:
                listener(peer)
            except Exception:
                log.exception("an unreachable-peer listener failed for node %d", peer)

    async def close(self) -> None:
        self._closed = True
        senders, self._senders = self._senders, {}
        await asyncio.gather(*(sender.close() for sender in senders.values()))
