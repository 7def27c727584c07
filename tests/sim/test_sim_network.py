"""The simulated network: delivery, loss, duplication, partitions, and the transport's
reports back to the sender (unreachable peers, snapshot outcomes), as the real one makes."""

from __future__ import annotations

import asyncio
from random import Random
from typing import Any

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    Membership,
    SnapshotMeta,
)
from distlab.sim.loop import VirtualTimeLoop
from distlab.sim.network import (
    DUPLICATING,
    RELIABLE,
    UNRELIABLE,
    UNRELIABLE_2015,
    Network,
    NetworkConditions,
)
from distlab.sim.raft.engine import RAFT_MESSAGE_KINDS

N1, N2 = NodeId(1), NodeId(2)


class Endpoint:
    def __init__(self) -> None:
        self.delivered: list[Any] = []
        self.unreachable: list[NodeId] = []
        self.snapshots: list[tuple[NodeId, bool]] = []

    def deliver(self, message: Any) -> bool:
        self.delivered.append(message)
        return True

    def report_unreachable(self, peer: NodeId) -> None:
        self.unreachable.append(peer)

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        self.snapshots.append((peer, succeeded))


def make(conditions: NetworkConditions = RELIABLE, seed: int = 1
         ) -> tuple[VirtualTimeLoop, Network, dict[NodeId, Endpoint], list[str]]:
    loop = VirtualTimeLoop()
    endpoints = {N1: Endpoint(), N2: Endpoint()}
    storms: list[str] = []
    network = Network(rng=Random(seed), kinds=RAFT_MESSAGE_KINDS,
                      endpoint=lambda node, group: endpoints.get(node),
                      call_later=loop.call_later, now=loop.time, note=None,
                      on_storm=storms.append, conditions=conditions)
    return loop, network, endpoints, storms


def run(loop: VirtualTimeLoop, seconds: float) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


def heartbeat(term: int = 1) -> Heartbeat:
    return Heartbeat(term, N1, N2, commit=0)


def snapshot() -> InstallSnapshot:
    return InstallSnapshot(1, N1, N2, SnapshotMeta(5, 1, Membership(frozenset({N1, N2}))), b"s")


def test_a_cut_link_reports_its_peer_unreachable_once_until_it_carries_again() -> None:
    loop, network, endpoints, _ = make()
    network.topology.block(N1, N2)
    for _ in range(3):
        network.send(0, heartbeat())
    assert endpoints[N1].unreachable == [N2]
    network.topology.unblock(N1, N2)
    network.send(0, heartbeat())
    run(loop, 0.01)
    assert len(endpoints[N2].delivered) == 1
    network.topology.block(N1, N2)
    network.send(0, heartbeat())
    assert endpoints[N1].unreachable == [N2, N2]


def test_snapshot_sends_report_their_outcome() -> None:
    loop, network, endpoints, _ = make()
    network.send(0, snapshot())
    run(loop, 0.01)
    assert endpoints[N1].snapshots == [(N2, True)]
    network.send(0, snapshot())
    network.topology.partition([[N1], [N2]])  # cut while in flight
    run(loop, 0.01)
    assert endpoints[N1].snapshots == [(N2, True), (N2, False)]


def test_loss_and_duplication_follow_the_seed() -> None:
    def outcome(conditions: NetworkConditions, seed: int) -> int:
        loop, network, endpoints, _ = make(conditions, seed)
        for term in range(1, 201):
            network.send(0, heartbeat(term))
        run(loop, 1.0)
        delivered = [message.term for message in endpoints[N2].delivered]
        assert delivered == outcome_terms.setdefault((conditions.name, seed), delivered)
        return len(delivered)

    outcome_terms: dict[tuple[str, int], list[int]] = {}
    lossy = outcome(UNRELIABLE, 3)
    assert 150 < lossy < 200
    assert outcome(UNRELIABLE, 3) == lossy  # the same seed, the same fate for every message
    assert outcome(DUPLICATING, 3) > 200


def test_the_2015_labs_unreliable_mode_loses_a_tenth_of_requests_and_a_fifth_of_replies(
) -> None:
    loop, network, endpoints, _ = make(UNRELIABLE_2015, 7)
    sent = 0
    for _ in range(40):  # spread out, under the storm threshold
        for _ in range(100):
            network.send(0, heartbeat())
            network.send(0, HeartbeatReply(1, N2, N1))
            sent += 1
        run(loop, 0.2)
    requests_lost = 1 - len(endpoints[N2].delivered) / sent
    replies_lost = 1 - len(endpoints[N1].delivered) / sent
    assert 0.08 < requests_lost < 0.12, requests_lost
    assert 0.17 < replies_lost < 0.23, replies_lost


def test_a_link_that_floods_is_a_storm() -> None:
    _, network, _, storms = make()
    for _ in range(1000):
        network.send(0, heartbeat())
    assert len(storms) == 1 and "message storm: n1->n2" in storms[0]
