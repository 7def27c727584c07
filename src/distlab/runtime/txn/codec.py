"""The transaction messages on the peer transport (service "txn"): JSON objects naming their
type; decode raises MalformedMessage on anything a peer could not have meant."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    Decision,
    DecisionAck,
    Inquire,
    Message,
    Op,
    OpKind,
    PreDecide,
    PreDecideAck,
    Prepare,
    Protocol,
    SnapshotRead,
    SnapshotReadReply,
    StateReply,
    StateRequest,
    Vote,
)
from distlab.runtime.grpc.peer_codec import MalformedMessage
from distlab.runtime.host.group_transport import PeerCodec

SERVICE = "txn"
TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (
    Prepare, Vote, PreDecide, PreDecideAck, Decision, DecisionAck, Inquire, StateRequest,
    StateReply, SnapshotRead, SnapshotReadReply)}


def _plain(value: Any) -> Any:
    if isinstance(value, Protocol):
        return value.value
    if isinstance(value, Op):
        return [value.kind.value, value.key, value.argument]
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def encode(message: Message) -> bytes:
    body = {field.name: _plain(getattr(message, field.name)) for field in fields(message)}
    body["type"] = type(message).__name__
    return json.dumps(body, separators=(",", ":")).encode()


def decode(payload: bytes) -> Message:
    try:
        body = json.loads(payload)
        cls = TYPES[body.pop("type")]
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = body[field.name]
            name = field.name
            if name in ("sender", "recipient"):
                values[name] = NodeId(int(raw))
            elif name == "protocol":
                values[name] = Protocol(raw)
            elif name == "priority":
                values[name] = (int(raw[0]), str(raw[1]))
            elif name == "ops":
                values[name] = tuple(Op(OpKind(kind), str(key), str(argument))
                                     for kind, key, argument in raw)
            elif name == "participants":
                values[name] = tuple(NodeId(int(node)) for node in raw)
            elif name in ("round", "accepted_round"):
                values[name] = (int(raw[0]), int(raw[1]))
            elif name == "reads":
                values[name] = tuple((str(key), None if value is None else str(value))
                                     for key, value in raw)
            elif name in ("yes", "commit"):
                values[name] = bool(raw)
            elif name == "accepted_commit":
                values[name] = None if raw is None else bool(raw)
            elif name == "ts":
                values[name] = None if raw is None else int(raw)
            elif name == "keys":
                values[name] = tuple(str(key) for key in raw)
            else:
                values[name] = str(raw)
        message: Message = cls(**values)
        return message
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise MalformedMessage(f"a transaction message that does not decode: {error}") from None


class _NoBulk:
    """Transaction messages never travel as bulk transfers."""


TXN_PEER_CODEC = PeerCodec(SERVICE, encode, decode, _NoBulk)
