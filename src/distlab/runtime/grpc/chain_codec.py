"""Chain replica messages to protobuf and back: the payload of one peer-transport envelope
(service "chain", group 0). Decoding checks shapes (node ids, one body); what a
well-formed message means the core validates itself."""

from __future__ import annotations

from collections.abc import Iterable

from distlab.proto import chain_pb2
from distlab.protocols import chain
from distlab.runtime.grpc.peer_codec import MalformedMessage, node_id, parse

__all__ = ["MalformedMessage", "decode", "encode", "from_proto", "to_proto"]


def _updates_to_proto(updates: Iterable[chain.Update]) -> list[chain_pb2.ChainUpdate]:
    return [chain_pb2.ChainUpdate(seq=update.seq, key=update.key, value=update.value,
                                  client=update.client, request=update.request)
            for update in updates]


def _updates_from_proto(protos: Iterable[chain_pb2.ChainUpdate]) -> tuple[chain.Update, ...]:
    updates = []
    for proto in protos:
        if proto.seq == 0:
            raise MalformedMessage("an update numbered 0")
        updates.append(chain.Update(proto.seq, proto.key, proto.value, proto.client,
                                    proto.request))
    return tuple(updates)


def _writers_from_proto(protos: Iterable[chain_pb2.ChainWriterMark]
                        ) -> tuple[chain.WriterMark, ...]:
    marks = []
    for proto in protos:
        if proto.client == 0 or proto.seq == 0:
            raise MalformedMessage("a writer mark with no client or no update")
        marks.append(chain.WriterMark(proto.client, proto.request, proto.seq))
    return tuple(marks)


def to_proto(message: chain.Message) -> chain_pb2.ChainMessage:
    if isinstance(message, chain.Forward):
        return chain_pb2.ChainMessage(forward=chain_pb2.ChainForward(
            epoch=message.epoch, sender=message.sender, recipient=message.recipient,
            updates=_updates_to_proto(message.updates), sender_last=message.sender_last))
    if isinstance(message, chain.Ack):
        return chain_pb2.ChainMessage(ack=chain_pb2.ChainAck(
            epoch=message.epoch, sender=message.sender, recipient=message.recipient,
            received=message.received, committed=message.committed, synced=message.synced,
            need_state=message.need_state))
    if isinstance(message, chain.StateTransfer):
        return chain_pb2.ChainMessage(state_transfer=chain_pb2.ChainStateTransfer(
            epoch=message.epoch, sender=message.sender, recipient=message.recipient,
            versions=_updates_to_proto(message.versions), last=message.last,
            digest=message.digest,
            writers=[chain_pb2.ChainWriterMark(client=mark.client, request=mark.request,
                                               seq=mark.seq) for mark in message.writers]))
    if isinstance(message, chain.VersionQuery):
        return chain_pb2.ChainMessage(version_query=chain_pb2.ChainVersionQuery(
            epoch=message.epoch, sender=message.sender, recipient=message.recipient,
            query=message.query, key=message.key))
    return chain_pb2.ChainMessage(version_reply=chain_pb2.ChainVersionReply(
        epoch=message.epoch, sender=message.sender, recipient=message.recipient,
        query=message.query, key=message.key, seq=message.seq))


def from_proto(proto: chain_pb2.ChainMessage) -> chain.Message:
    which = proto.WhichOneof("body")
    if which == "forward":
        f = proto.forward
        return chain.Forward(f.epoch, node_id(f.sender), node_id(f.recipient),
                             _updates_from_proto(f.updates), f.sender_last)
    if which == "ack":
        a = proto.ack
        return chain.Ack(a.epoch, node_id(a.sender), node_id(a.recipient), a.received,
                         a.committed, a.synced, a.need_state)
    if which == "state_transfer":
        t = proto.state_transfer
        return chain.StateTransfer(t.epoch, node_id(t.sender), node_id(t.recipient),
                                   _updates_from_proto(t.versions), t.last, t.digest,
                                   _writers_from_proto(t.writers))
    if which == "version_query":
        q = proto.version_query
        return chain.VersionQuery(q.epoch, node_id(q.sender), node_id(q.recipient), q.query,
                                  q.key)
    if which == "version_reply":
        r = proto.version_reply
        return chain.VersionReply(r.epoch, node_id(r.sender), node_id(r.recipient), r.query,
                                  r.key, r.seq)
    raise MalformedMessage("a chain message with no body")


def encode(message: chain.Message) -> bytes:
    return to_proto(message).SerializeToString()


def decode(payload: bytes) -> chain.Message:
    return from_proto(parse(chain_pb2.ChainMessage, payload, "chain"))
