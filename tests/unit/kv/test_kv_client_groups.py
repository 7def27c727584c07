"""KVClient over a store sharded in groups: each key to its group's leader, sessions per
group, leaders learned from Admin.Status and from NOT_LEADER hints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from distlab.apps.kv import KVStateMachine
from distlab.client import KVClient
from distlab.wire.sharding import group_of
from tests.unit.kv.kv_harness import FollowerLog, GroupedAdmin, SingleMemberLog, grouped_node

KEYS = [f"key-{n}" for n in range(24)]


@dataclass
class TwoGroups:
    """Node 1 leads group 0 and follows in group 1; node 2 the other way round."""

    addresses: dict[int, str]
    machines: list[KVStateMachine]
    followers: list[FollowerLog]  # followers[g]: the log of the node that does not lead g
    admins: list[GroupedAdmin]


@asynccontextmanager
async def two_groups() -> AsyncIterator[TwoGroups]:
    machines = [KVStateMachine(), KVStateMachine()]
    followers = [FollowerLog(1, None), FollowerLog(2, None)]
    node1_logs = [SingleMemberLog(machines[0], node_id=1), followers[1]]
    node2_logs = [followers[0], SingleMemberLog(machines[1], node_id=2)]
    async with grouped_node(1, node1_logs, [machines[0], KVStateMachine()]) as (a1, admin1), \
            grouped_node(2, node2_logs, [KVStateMachine(), machines[1]]) as (a2, admin2):
        followers[0].leader_address = a1
        followers[1].leader_address = a2
        yield TwoGroups({1: a1, 2: a2}, machines, followers, [admin1, admin2])


async def test_each_key_goes_to_its_groups_leader() -> None:
    async with two_groups() as cluster, KVClient(cluster.addresses) as client:
        assert await client.group_count() == 2
        for key in KEYS:
            await client.put(key, f"v-{key}")
        for key in KEYS:
            assert await client.get(key) == f"v-{key}"
        assert client.leader_of(0) == cluster.addresses[1]
        assert client.leader_of(1) == cluster.addresses[2]
    for key in KEYS:
        group = group_of(key, 2)
        assert cluster.machines[group].get(key.encode()) == f"v-{key}".encode()
        assert cluster.machines[1 - group].get(key.encode()) is None
    assert {group_of(key, 2) for key in KEYS} == {0, 1}
    # Status named both leaders: no request went to a follower, and G was asked once.
    assert [follower.calls for follower in cluster.followers] == [0, 0]
    assert sum(admin.status_calls for admin in cluster.admins) == 1
    # Each group's store holds the sessions of the writes to its own keys.
    assert all(machine.session_count() >= 1 for machine in cluster.machines)


async def test_a_plain_address_list_learns_the_other_leader_from_a_hint() -> None:
    async with two_groups() as cluster, KVClient([cluster.addresses[1]]) as client:
        keys = [key for key in KEYS if group_of(key, 2) == 1][:5]
        for key in keys:
            await client.append(key, "x")
        assert client.leader_of(1) == cluster.addresses[2]
    assert all(cluster.machines[1].get(key.encode()) == b"x" for key in keys)
    # Node 1 refused once (the session's opening), naming node 2; then the client went there.
    assert cluster.followers[1].calls == 1
