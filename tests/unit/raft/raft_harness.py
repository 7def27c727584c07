"""What the Raft core's tests share: three voters, a core made to order, its Readys handed out."""

from __future__ import annotations

from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    AppendEntriesReply,
    Config,
    MemoryStorage,
    Message,
    Raft,
    RequestVoteReply,
    Role,
)

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)
VOTERS = frozenset({N1, N2, N3})


def make(node: NodeId = N1, storage: MemoryStorage | None = None, **overrides: object) -> Raft:
    """A member of VOTERS with short timeouts; `overrides` are further `Config` fields."""
    config = Config(node_id=node, voters=VOTERS, election_ticks=10, heartbeat_ticks=2,
                    **overrides)  # type: ignore[arg-type]
    return Raft(config, storage or MemoryStorage(), Random(node))


def drain(raft: Raft, storage: MemoryStorage | None = None) -> list[Message]:
    """Hands out every Ready, persisting each to `storage` if given; returns the messages."""
    sent: list[Message] = []
    while raft.has_ready():
        ready = raft.ready()
        if storage is not None:
            if ready.snapshot is not None:
                storage.apply_snapshot(ready.snapshot)
            storage.append(ready.entries)
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
        sent.extend(ready.messages)
        raft.advance()
    return sent


def elect(
    raft: Raft, *acknowledged_by: NodeId, storage: MemoryStorage | None = None
) -> Raft:
    """Makes a fresh node 1 leader of term 1 with node 2's votes; the followers named then
    acknowledge its no-op (so they are in replicate state). Every Ready is handed out."""
    raft.campaign()
    raft.step(RequestVoteReply(1, N2, N1, granted=True, pre_vote=True))
    raft.step(RequestVoteReply(1, N2, N1, granted=True))
    assert raft.role is Role.LEADER and raft.term == 1
    for peer in acknowledged_by:
        raft.step(AppendEntriesReply(1, peer, N1, success=True, match_index=1))
    drain(raft, storage)
    return raft
