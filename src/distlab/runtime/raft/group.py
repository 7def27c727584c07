"""One Raft group hosted on a node: the core under the generic driver, and the capabilities
(membership changes, leadership transfer) Admin uses without knowing it is Raft."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from distlab.core.capabilities import Members
from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.protocols import raft
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.host.group_driver import DrivenGroup, TransportFactory, group_driver
from distlab.runtime.host.machine import AddressBook, HostedMachine, member_address_record
from distlab.runtime.host.ports import Clock
from distlab.runtime.raft.storage import DurableStorage

log = logging.getLogger(__name__)

ENGINE = "raft"


@dataclass(frozen=True, slots=True)
class RaftTiming:
    """The driver's timing plus Raft's timeouts, in ticks."""

    driver: Timing = field(default_factory=Timing)
    election_ticks: int = 10
    # At most 10 heartbeats a second, as the 6.5840 lab asks of a Raft implementation.
    heartbeat_ticks: int = 2


def is_blank(storage: DurableStorage) -> bool:
    """Whether `storage` holds nothing yet: no term, no vote, no entry, no snapshot."""
    return (storage.hard_state() == raft.HardState() and storage.snapshot() is None
            and not storage.entries())


class RaftGroup(DrivenGroup):
    """Implements `ReplicatedLog`, `MembershipChanges` and `LeadershipTransfer` for one group."""

    driver: Driver[raft.Raft]

    def __init__(self, driver: Driver[raft.Raft], storage: DurableStorage,
                 bootstrap: raft.Snapshot | None = None) -> None:
        """`bootstrap`: the configuration to record on disk when the group starts (its
        storage was blank and it was given voters)."""
        self.driver = driver
        self.group = driver.group
        self._storage = storage
        self._bootstrap = bootstrap

    @classmethod
    def build(
        cls,
        *,
        node_id: NodeId,
        group: int,
        voters: frozenset[NodeId],
        storage: DurableStorage,
        machine: StateMachine,
        addresses: AddressBook,
        chain_master: StateMachine | None = None,
        txn_log: StateMachine | None = None,
        transport: TransportFactory,
        clock: Clock,
        rng: random.Random,
        timing: RaftTiming | None = None,
        planted_bugs: frozenset[str] = frozenset(),
        on_failure: Callable[[BaseException], None] = lambda error: None,
    ) -> RaftGroup:
        """A group restored from `storage`; `voters` bootstraps a brand-new one (empty: join).
        `planted_bugs` (names of `raft.BUG_CATALOGUE`) is for the simulator's bug hunts only.

        Raises ValueError when the stored snapshot cannot be read.
        """
        timing = timing or RaftTiming()
        hosted = HostedMachine(machine, addresses, chain_master, txn_log)
        snapshot = storage.snapshot()
        if snapshot is not None:
            hosted.restore(snapshot.data)
            if snapshot.meta.last_index > 0:  # index 0 only records the bootstrap voters
                log.info("group %d: restored snapshot at index %d from disk", group,
                         snapshot.meta.last_index)
        bootstrap = None
        if voters and is_blank(storage):
            bootstrap = raft.Snapshot(raft.SnapshotMeta(0, 0, raft.Membership(voters)),
                                      hosted.snapshot())
        config = raft.Config(
            node_id=node_id, voters=voters, election_ticks=timing.election_ticks,
            heartbeat_ticks=timing.heartbeat_ticks, planted_bugs=planted_bugs,
        )
        core = raft.Raft(config, storage, rng)
        driver = group_driver(
            engine=ENGINE, node_id=node_id, group=group, core=core, machine=hosted,
            storage=storage, transport=transport, clock=clock, timing=timing.driver,
            on_failure=on_failure)
        return cls(driver, storage, bootstrap)

    def start(self) -> None:
        if self._bootstrap is not None:
            # The bootstrap configuration goes to disk as the snapshot at index 0 (as etcd's
            # Bootstrap does), so a restart takes the membership from disk, then from the
            # log, and never again from the start-up list, which may have changed since.
            # Only now, once the node serves: a start that failed records nothing.
            self._storage.save_snapshot(self._bootstrap)
            log.info("group %d: bootstrapped with voters %s", self.group,
                     sorted(self._bootstrap.meta.membership.voters))
            self._bootstrap = None
        self.driver.start()

    def members(self) -> Members:
        membership = self.driver.core.membership
        return Members(voters=membership.voters, learners=membership.learners)

    def voters(self) -> frozenset[NodeId]:
        return self.driver.core.membership.voters

    async def add_member(self, node: NodeId, address: str) -> None:
        """Record `node`'s address in the log, then add it as a learner (promoted when caught
        up). Raises NotLeader, or ValueError when a membership change is already under way."""
        await self.driver.propose_envelope(member_address_record(node, address))
        if not await self.driver.request(lambda core: core.add_member(node)):
            raise ValueError(f"group {self.group}: cannot add node {node} now (a change is in "
                             "progress, or it is already a member)")

    async def remove_member(self, node: NodeId) -> None:
        if not self.driver.core.is_leader():
            raise self.driver.not_leader()
        if not await self.driver.request(lambda core: core.remove_member(node)):
            raise ValueError(f"group {self.group}: cannot remove node {node} now (not a member, "
                             "the last voter, or another change is in progress)")

    async def transfer_leadership(self, target: NodeId) -> bool:
        if not self.driver.core.is_leader():
            raise self.driver.not_leader()
        if target == self.driver.node_id:
            return True
        started: bool = await self.driver.request(
            lambda core: core.transfer_leadership(target))
        return started

    def caught_up(self) -> dict[NodeId, bool]:
        """For a leader: whether each peer has every entry and was heard from lately."""
        core = self.driver.core
        last = core.last_log_index()
        return {peer: match >= last and active
                for peer, (match, active) in core.leader_progress().items()}
