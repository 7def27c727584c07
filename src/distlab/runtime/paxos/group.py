"""One Multi-Paxos group hosted on a node: the core under the generic driver.

The group's members are the cluster's nodes, fixed at start-up (this engine has no
membership changes yet), and it offers no leadership transfer, so the host does not balance
its leaders: whichever member's scout wins phase 1 leads until it is preempted.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from distlab.core.capabilities import Members
from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.protocols import multipaxos as paxos
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.host.group_driver import DrivenGroup, TransportFactory, group_driver
from distlab.runtime.host.machine import AddressBook, HostedMachine
from distlab.runtime.host.ports import Clock
from distlab.runtime.paxos.storage import PaxosDurableStorage

log = logging.getLogger(__name__)

ENGINE = "paxos"


@dataclass(frozen=True, slots=True)
class PaxosTiming:
    """The driver's timing plus the core's timeouts, in ticks: a member that hears no
    leader for `election_ticks` (randomized up to twice that) runs phase 1; a preempted
    one backs off 1..`backoff_ticks` ticks."""

    driver: Timing = field(default_factory=Timing)
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    backoff_ticks: int = 10


class PaxosGroup(DrivenGroup):
    """Implements `ReplicatedLog` (and what the host needs) for one Multi-Paxos group."""

    driver: Driver[paxos.MultiPaxos]

    def __init__(self, driver: Driver[paxos.MultiPaxos], voters: frozenset[NodeId]) -> None:
        self.driver = driver
        self.group = driver.group
        self._voters = voters

    @classmethod
    def build(
        cls,
        *,
        node_id: NodeId,
        group: int,
        voters: frozenset[NodeId],
        storage: PaxosDurableStorage,
        machine: StateMachine,
        addresses: AddressBook,
        chain_master: StateMachine | None = None,
        txn_log: StateMachine | None = None,
        transport: TransportFactory,
        clock: Clock,
        rng: random.Random,
        timing: PaxosTiming | None = None,
        on_failure: Callable[[BaseException], None] = lambda error: None,
    ) -> PaxosGroup:
        """A group restored from `storage` over the fixed `voters`.

        Raises ValueError when the stored snapshot cannot be read.
        """
        timing = timing or PaxosTiming()
        hosted = HostedMachine(machine, addresses, chain_master, txn_log)
        snapshot = storage.snapshot()
        if snapshot is not None:
            hosted.restore(snapshot.data)
            log.info("group %d: restored snapshot at slot %d from disk", group,
                     snapshot.meta.last_index)
        config = paxos.Config(
            node_id=node_id, voters=voters, election_ticks=timing.election_ticks,
            heartbeat_ticks=timing.heartbeat_ticks, backoff_ticks=timing.backoff_ticks)
        core = paxos.MultiPaxos(config, storage, rng)
        storage.release_recovered()
        if core.promised != paxos.ZERO_BALLOT or core.commit_index:
            log.info("group %d: recovered promise %s, %d accepted slots, decided through %d",
                     group, core.promised.describe(), len(core.accepted), core.commit_index)
        driver = group_driver(
            engine=ENGINE, node_id=node_id, group=group, core=core, machine=hosted,
            storage=storage, transport=transport, clock=clock, timing=timing.driver,
            on_failure=on_failure)
        return cls(driver, voters)

    def start(self) -> None:
        self.driver.start()

    def members(self) -> Members:
        return Members(voters=self._voters, learners=frozenset())

    def voters(self) -> frozenset[NodeId]:
        return self._voters
