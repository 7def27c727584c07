"""The master's failure detector: which replicas stopped renewing their lease.

It runs on the leader of the master's group, counting ticks (timer-driven, so a clock that
steps forward does not make leases run out sooner) since it last saw each replica's renewal
count move. A replica silent for `removal_ticks` is proposed for removal, with the count the
monitor saw, so that the master ignores the removal if a renewal got in first. A monitor
that has just become leader starts every count from zero: a new leader never removes a
replica sooner than the old one would have.

`removal_ticks` must exceed a replica's lease (`ReplicaConfig.lease_ticks`) by the clocks'
worst disagreement in rate: a replica stops serving reads before the master can remove it.
"""

from __future__ import annotations

from collections.abc import Mapping

from distlab.core.ids import NodeId
from distlab.protocols.chain.master import init_command, remove_command
from distlab.protocols.chain.messages import ChainConfig


class LeaseMonitor:
    """`initial`: the members of the first chain, which the leader proposes while the master
    has none (a node that joined a running cluster has none to propose)."""

    def __init__(self, removal_ticks: int = 60, initial: tuple[NodeId, ...] = ()) -> None:
        self.removal_ticks = removal_ticks
        self.initial = initial
        self._leading = False
        # node -> (renewal count last seen, ticks since it changed)
        self._seen: dict[NodeId, tuple[int, int]] = {}

    def tick(self, leading: bool, config: ChainConfig,
             renewals: Mapping[NodeId, int]) -> list[bytes]:
        """One tick; the removals to propose (at most one: each waits for the next epoch)."""
        if not leading:
            self._leading = False
            self._seen.clear()
            return []
        if not self._leading:
            self._leading = True
            self._seen.clear()
        if config.epoch == 0:
            return [init_command(self.initial)] if self.initial else []
        watched = [*config.chain, *([config.joining] if config.joining is not None else [])]
        for node in list(self._seen):
            if node not in watched:
                del self._seen[node]
        expired = []
        for node in watched:
            count = renewals.get(node, 0)
            seen = self._seen.get(node)
            if seen is None or seen[0] != count:
                self._seen[node] = (count, 0)
                continue
            quiet = seen[1] + 1
            self._seen[node] = (count, quiet)
            if quiet >= self.removal_ticks:
                expired.append((node, count))
        if not expired:
            return []
        node, count = expired[0]
        # Asked again only after another full silence, should this one not be taken.
        self._seen[node] = (count, 0)
        return [remove_command(node, count)]
