"""What two nodes check before they exchange envelopes: who is calling whom, GROUPS and
ENGINE.

The calling node puts its id, the id of the node it believes it is calling, its GROUPS
value and its ENGINE in every call's metadata; the called node refuses a call meant for
another node (the caller has an address wrong), from a node running another number of groups
(keys would map to different groups on the two nodes) or another engine (its groups could
not understand each other), and answers an accepted stream with its own id, GROUPS and
ENGINE as initial metadata, so the caller knows the stream is open before it writes on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from distlab.core.ids import NodeId

SENDER_KEY = "distlab-peer-sender"
RECIPIENT_KEY = "distlab-peer-recipient"
GROUPS_KEY = "distlab-peer-groups"
ENGINE_KEY = "distlab-peer-engine"
DEFAULT_ENGINE = "raft"

Metadata = tuple[tuple[str, str], ...]


class BadHandshake(ValueError):
    """The call's metadata does not say who is calling, whom, or with what GROUPS."""


@dataclass(frozen=True, slots=True)
class Handshake:
    sender: NodeId
    recipient: NodeId
    groups: int
    engine: str = DEFAULT_ENGINE

    def metadata(self) -> Metadata:
        return ((SENDER_KEY, str(self.sender)), (RECIPIENT_KEY, str(self.recipient)),
                (GROUPS_KEY, str(self.groups)), (ENGINE_KEY, self.engine))

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, str | bytes]] | None) -> Handshake:
        values = {key: value for key, value in metadata or ()}
        sender, recipient = _positive(values, SENDER_KEY), _positive(values, RECIPIENT_KEY)
        groups = _positive(values, GROUPS_KEY)
        engine = values.get(ENGINE_KEY)
        if not isinstance(engine, str) or not engine:
            raise BadHandshake(f"the call's metadata has no valid {ENGINE_KEY}: {engine!r}")
        return cls(NodeId(sender), NodeId(recipient), groups, engine)


def _positive(values: dict[str, str | bytes], key: str) -> int:
    value = values.get(key)
    try:
        number = int(value) if isinstance(value, str) else 0
    except ValueError:
        number = 0
    if number <= 0:
        raise BadHandshake(f"the call's metadata has no valid {key}: {value!r}")
    return number


def acceptance(node_id: NodeId, groups: int, engine: str = DEFAULT_ENGINE) -> Metadata:
    """The initial metadata with which `node_id` accepts a stream."""
    return ((SENDER_KEY, str(node_id)), (GROUPS_KEY, str(groups)), (ENGINE_KEY, engine))


def acceptance_problem(metadata: Iterable[tuple[str, str | bytes]] | None, peer: NodeId,
                       groups: int, engine: str = DEFAULT_ENGINE) -> str | None:
    """What is wrong with `metadata`, a stream's initial metadata, as `peer`'s acceptance of a
    stream from a node running `groups` groups of `engine`; None when it is one."""
    values = {key: value for key, value in metadata or () if isinstance(value, str)}
    answered_by, their_groups = values.get(SENDER_KEY), values.get(GROUPS_KEY)
    if answered_by != str(peer):
        return f"the stream was answered by {answered_by!r}, not node {peer}"
    if their_groups != str(groups):
        return (f"GROUPS differ: node {peer} runs GROUPS={their_groups}, "
                f"this node runs GROUPS={groups}")
    their_engine = values.get(ENGINE_KEY)
    if their_engine != engine:
        return (f"ENGINE differs: node {peer} runs ENGINE={their_engine}, "
                f"this node runs ENGINE={engine}")
    return None


def refusal(node_id: NodeId, groups: int, handshake: Handshake,
            engine: str = DEFAULT_ENGINE) -> tuple[str, str] | None:
    """Why `node_id`, running `groups` groups of `engine`, refuses the call: (reason label,
    text)."""
    if handshake.recipient != node_id:
        return "wrong_recipient", f"this is node {node_id}, not {handshake.recipient}"
    if handshake.groups != groups:
        return "groups_mismatch", (
            f"GROUPS differ: node {handshake.sender} runs GROUPS={handshake.groups}, "
            f"node {node_id} runs GROUPS={groups}")
    if handshake.engine != engine:
        return "engine_mismatch", (
            f"ENGINE differs: node {handshake.sender} runs ENGINE={handshake.engine}, "
            f"node {node_id} runs ENGINE={engine}")
    return None
