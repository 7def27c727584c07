"""The chain follows the cluster's membership: a node the cluster gains joins as the new tail
by itself, and a retired one is dropped at once and kept out until it is admitted again."""

from __future__ import annotations

from collections.abc import Mapping

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    ChainConfig,
    ChainMaster,
    ChainReplica,
    MasterCall,
    MasterRequest,
    ReplicaConfig,
    Role,
    StoredReplica,
    admit_command,
    renew_command,
    retire_command,
)
from distlab.runtime.chain.driver import ChainDriver
from tests.unit.chain.harness import Cluster

N1, N2, N3, N4 = NodeId(1), NodeId(2), NodeId(3), NodeId(4)


def running(size: int = 3) -> Cluster:
    cluster = Cluster(size)
    cluster.tick(3)  # the first renewals grant every lease
    return cluster


def test_a_node_the_cluster_gains_asks_to_join_and_becomes_the_tail() -> None:
    cluster = running()
    cluster.write(N1, 1, b"k", b"v")
    cluster.deliver()
    newcomer = cluster.add(N4)
    # Out of the chain it learned, with nothing recorded: it asks to join.
    assert newcomer.role is Role.OUT and newcomer.must_join
    cluster.tick(3)
    assert cluster.master.config.joining == N4
    cluster.tick(12)
    assert cluster.master.config.chain == (N1, N2, N3, N4)
    assert newcomer.role is Role.TAIL and newcomer.value_of(b"k") == (1, b"v")


def test_a_retired_replica_is_kept_out_until_it_is_admitted_again() -> None:
    cluster = running()
    epoch = cluster.master.config.epoch
    cluster.propose(retire_command(N2))
    cluster.inform()
    assert cluster.master.config.chain == (N1, N3)
    assert cluster.master.config.epoch == epoch + 1
    retired = cluster.replicas[N2]
    assert retired.role is Role.OUT and retired.must_join
    cluster.tick(30)  # it asks to join at every round, and its renewals are refused
    assert cluster.master.config.chain == (N1, N3) and cluster.master.config.joining is None
    assert not retired.lease_valid()
    cluster.write(N1, 1, b"k", b"v")
    cluster.deliver()
    cluster.propose(admit_command(N2))
    cluster.tick(15)
    assert cluster.master.config.chain == (N1, N3, N2)
    assert retired.role is Role.TAIL and retired.value_of(b"k") == (1, b"v")


class MasterOf:
    """A `MasterPort` answering from a master applied in place (no replicated log)."""

    def __init__(self, master: ChainMaster) -> None:
        self.master = master

    async def submit(self, command: bytes) -> bytes:
        return self.master.apply(0, command)

    def local_config(self) -> ChainConfig | None:
        return self.master.config

    def leads(self) -> bool:
        return False

    def renewals(self) -> Mapping[NodeId, int]:
        return self.master.renewals


async def test_a_refused_renewal_grants_no_lease() -> None:
    master = ChainMaster()
    master.apply(0, retire_command(N2))
    driver = ChainDriver(node_id=N2, core=ChainReplica(ReplicaConfig(N2), StoredReplica()),
                         storage=None, transport=None,  # type: ignore[arg-type]
                         master=MasterOf(master), clock=None)  # type: ignore[arg-type]
    renewal = MasterRequest(MasterCall.RENEW, 0, 7)
    await driver._call_master(renewal, renew_command(N2))
    assert driver._inputs.leases == [] and master.renewals == {}
    master.apply(1, admit_command(N2))
    await driver._call_master(renewal, renew_command(N2))
    assert driver._inputs.leases == [7] and master.renewals == {N2: 1}
