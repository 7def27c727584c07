"""The chain's messages and configuration: frozen, slotted, every one carrying its epoch.

A replica talks only to its neighbours: `Forward` carries state changes down the chain (and,
from the tail, to a replica that is joining), `Ack` carries back up what the sender has
received and what the tail has committed, `StateTransfer` hands a joining replica the
tail's whole state, and `VersionQuery`/`VersionReply` let a CRAQ replica ask the tail which
version of a key is committed. The chain's order and epoch come from the master as a
`ChainConfig`. `WriterMark`s, carried in a state transfer, let every replica recognise a
client's retry of a write it holds already.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NodeId


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """The chain as the master decided it in `epoch`: `chain` from head to tail, and the
    replica being added as the new tail, if any."""

    epoch: int
    chain: tuple[NodeId, ...]
    joining: NodeId | None = None

    def __post_init__(self) -> None:
        assert len(set(self.chain)) == len(self.chain), f"a replica twice in {self.chain}"
        assert self.joining is None or self.joining not in self.chain, \
            f"n{self.joining} joins a chain it is in"

    @property
    def head(self) -> NodeId | None:
        return self.chain[0] if self.chain else None

    @property
    def tail(self) -> NodeId | None:
        return self.chain[-1] if self.chain else None

    def predecessor(self, node: NodeId) -> NodeId | None:
        if node == self.joining:
            return self.tail
        if node not in self.chain:
            return None
        index = self.chain.index(node)
        return self.chain[index - 1] if index > 0 else None

    def successor(self, node: NodeId) -> NodeId | None:
        """Where `node` forwards: the next replica, or, from the tail, the joining one."""
        if node not in self.chain:
            return None
        index = self.chain.index(node)
        if index + 1 < len(self.chain):
            return self.chain[index + 1]
        return self.joining


@dataclass(frozen=True, slots=True)
class Update:
    """One state change, numbered by the head: `key` takes `value` at `seq`. `client` and
    `request` name the client's write it came from (0: a write that named none), so that a
    head, this one or a later one, recognises a retry of it."""

    seq: int
    key: bytes
    value: bytes
    client: int = 0
    request: int = 0


@dataclass(frozen=True, slots=True)
class WriterMark:
    """A client's newest write in a replica's history: its `request` number and the `seq`
    the head gave it."""

    client: int
    request: int
    seq: int


@dataclass(frozen=True, slots=True)
class Forward:
    """Updates from `sender` to its successor, in order; `sender_last` is the sender's last
    sequence number as it sent them (the receiver is caught up once it has that far)."""

    epoch: int
    sender: NodeId
    recipient: NodeId
    updates: tuple[Update, ...]
    sender_last: int


@dataclass(frozen=True, slots=True)
class Ack:
    """From a successor: it holds every update up to `received`, and everything up to
    `committed` is applied at the tail. `synced` says whether it has caught up with the
    sender's position in this epoch; `need_state` asks for a state transfer (a joiner)."""

    epoch: int
    sender: NodeId
    recipient: NodeId
    received: int
    committed: int
    synced: bool
    need_state: bool = False


@dataclass(frozen=True, slots=True)
class StateTransfer:
    """The tail's whole state for a joining replica: the latest version of every key, as of
    `last`, all of it committed."""

    epoch: int
    sender: NodeId
    recipient: NodeId
    versions: tuple[Update, ...]
    last: int
    # The digest of the sender's history up to `last`, which the receiver's becomes.
    digest: int
    # Each client's newest write, so the joiner, once head, still recognises retries.
    writers: tuple[WriterMark, ...] = ()


@dataclass(frozen=True, slots=True)
class VersionQuery:
    """CRAQ: which version of `key` has the tail committed?"""

    epoch: int
    sender: NodeId
    recipient: NodeId
    query: int
    key: bytes


@dataclass(frozen=True, slots=True)
class VersionReply:
    """The tail's committed version of `key` (0: the key was never written)."""

    epoch: int
    sender: NodeId
    recipient: NodeId
    query: int
    key: bytes
    seq: int


Message = Forward | Ack | StateTransfer | VersionQuery | VersionReply

MESSAGE_TYPES: tuple[type, ...] = (Forward, Ack, StateTransfer, VersionQuery, VersionReply)


def is_request(message: Message) -> bool:
    """Requests, as a lossy network tells them from replies: what flows down the chain and
    the queries; acknowledgements and answers are replies."""
    return isinstance(message, Forward | StateTransfer | VersionQuery)


def describe(message: Message) -> str:
    if isinstance(message, Forward):
        if not message.updates:
            return f"Forward(e{message.epoch}, none, last {message.sender_last})"
        first, last = message.updates[0].seq, message.updates[-1].seq
        return f"Forward(e{message.epoch}, {first}..{last}, last {message.sender_last})"
    if isinstance(message, Ack):
        extra = ", need state" if message.need_state else ""
        return (f"Ack(e{message.epoch}, received {message.received}, committed "
                f"{message.committed}{', synced' if message.synced else ''}{extra})")
    if isinstance(message, StateTransfer):
        return (f"StateTransfer(e{message.epoch}, {len(message.versions)} keys, last "
                f"{message.last})")
    if isinstance(message, VersionQuery):
        return f"VersionQuery(e{message.epoch}, #{message.query} {message.key!r})"
    return (f"VersionReply(e{message.epoch}, #{message.query} {message.key!r} at "
            f"{message.seq})")
