"""Leadership balancing by transfer: each node hands a group it leads to a caught-up member
that leads fewer, until no member leads two more groups than another.

Every node is a member of every group, so each knows every group's leader and decides on its
own; only a leader acts, and only by leadership transfer, never by forcing an election, so
balancing costs no unavailability beyond a transfer's. With G >= N groups every node ends up
leading at least one. With G < N (one group) nothing moves: a difference of one is balanced,
so a leader chosen by an election or by `cluster transfer-leader` stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.replicated_log import EngineError
from distlab.core.status import EngineStatus

log = logging.getLogger(__name__)

BALANCE_INTERVAL_SECONDS = 1.0
# After a transfer, let every node's view of the leaders settle before moving another.
SETTLE_SECONDS = 2.0


@runtime_checkable
class BalancedGroup(Protocol):
    """A group whose engine can hand its leadership over (Raft's can, Multi-Paxos's not)."""

    group: int

    def status(self) -> EngineStatus: ...

    def voters(self) -> frozenset[NodeId]: ...

    def caught_up(self) -> dict[NodeId, bool]: ...

    async def transfer_leadership(self, target: NodeId) -> bool: ...


def choose_transfer(node_id: NodeId, groups: Sequence[BalancedGroup]
                    ) -> tuple[BalancedGroup, NodeId] | None:
    """The group this node should hand over, and to whom; None when balanced."""
    led = Counter(group.status().leader_id for group in groups)
    led.pop(NO_NODE, None)
    mine = [group for group in groups if group.status().leader_id == node_id
            and group.status().role == "leader"]
    if len(mine) < 2:
        return None
    for group in mine:
        ready = group.caught_up()
        candidates = sorted((led[peer], peer) for peer in group.voters()
                            if peer != node_id and ready.get(peer, False))
        if candidates and len(mine) - candidates[0][0] >= 2:
            return group, candidates[0][1]
    return None


class LeaderBalancer:
    def __init__(self, node_id: NodeId, groups: Sequence[BalancedGroup]) -> None:
        self._node_id = node_id
        self._groups = groups
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"balancer-{self._node_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(BALANCE_INTERVAL_SECONDS)
            choice = choose_transfer(self._node_id, self._groups)
            if choice is None:
                continue
            group, target = choice
            try:
                started = await group.transfer_leadership(target)
            except EngineError:
                continue  # leadership moved meanwhile; look again next round
            if started:
                log.info("node %d hands group %d to node %d to balance leadership",
                         self._node_id, group.group, target)
                await asyncio.sleep(SETTLE_SECONDS)
