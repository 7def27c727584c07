"""What the codecs of every engine's peer messages share: how a malformed payload is reported,
how node ids are checked, and how an envelope's bytes become a protobuf message."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from distlab.core.ids import NodeId


class MalformedMessage(ValueError):
    """A peer sent something that is not a valid message of the engine's protocol."""


ProtoT = TypeVar("ProtoT", bound=ProtoMessage)


def node_id(value: int) -> NodeId:
    """`value` as a node id; raises MalformedMessage unless it is positive."""
    if value <= 0:
        raise MalformedMessage(f"node ids are positive, got {value}")
    return NodeId(value)


def parse(proto_type: type[ProtoT], payload: bytes, what: str) -> ProtoT:
    """`payload` as a `proto_type`; raises MalformedMessage naming `what` it should have been."""
    try:
        return proto_type.FromString(payload)
    except DecodeError as error:
        raise MalformedMessage(f"not a {what} message: {error}") from error
