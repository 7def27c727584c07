"""NOT_LEADER, the one refusal every replicated service shares, encoded one way.

A member that cannot serve a request because it does not lead the request's group answers
FAILED_PRECONDITION (definite: nothing happened) with trailing metadata `error-reason:
not-leader`, `group`, and, when it knows them, `leader-id` and `leader-address`. Servers build
the answer with `encode_not_leader`; clients read it back with `decode_not_leader`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from distlab.core.ids import NodeId
from distlab.wire.metadata import ERROR_REASON, GROUP, LEADER_ADDRESS, LEADER_ID, REASON_NOT_LEADER


@dataclass(frozen=True, slots=True)
class RpcStatus:
    """An error answer: status code, details and trailing metadata (what `context.abort`
    takes, in that order)."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class NotLeaderHint:
    """What a NOT_LEADER refusal says: the group asked about, and its leader if known."""

    group: int
    leader_id: NodeId | None
    leader_address: str | None


def encode_not_leader(leader_id: int | None, leader_address: str | None, group: int
                      ) -> RpcStatus:
    """The answer of a member that does not lead `group`; the leader it knows, if any."""
    metadata = [(ERROR_REASON, REASON_NOT_LEADER), (GROUP, str(group))]
    if leader_id:
        metadata.append((LEADER_ID, str(leader_id)))
    if leader_address:
        metadata.append((LEADER_ADDRESS, leader_address))
    if leader_id:
        where = f"node {leader_id}" + (f" at {leader_address}" if leader_address else "")
    else:
        where = "unknown"
    return RpcStatus(grpc.StatusCode.FAILED_PRECONDITION,
                     f"not the leader of group {group}; leader is {where}", tuple(metadata))


def trailers_of(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The error's trailing metadata as text keys and values (binary values are skipped)."""
    pairs: Iterable[tuple[str, str | bytes]] = error.trailing_metadata() or ()
    return {key: value for key, value in pairs if isinstance(value, str)}


def decode_not_leader(error: grpc.aio.AioRpcError) -> NotLeaderHint | None:
    """The hint of a NOT_LEADER refusal, or None when `error` is another failure."""
    if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return None
    trailers = trailers_of(error)
    if trailers.get(ERROR_REASON) != REASON_NOT_LEADER:
        return None
    group_text = trailers.get(GROUP, "0")
    id_text = trailers.get(LEADER_ID, "")
    leader_id = NodeId(int(id_text)) if id_text.isdigit() and int(id_text) > 0 else None
    return NotLeaderHint(
        group=int(group_text) if group_text.isdigit() else 0,
        leader_id=leader_id,
        leader_address=trailers.get(LEADER_ADDRESS) or None,
    )
