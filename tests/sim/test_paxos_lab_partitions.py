"""The 6.824 (2015) Paxos lab's changing partitions on the simulator: one peer switching
sides twenty times, on a reliable and on an unreliable network (TestPartition's last two
parts), and twenty seconds of random repartitioning under load (TestLots)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from random import Random

from distlab.core.ids import NodeId
from distlab.sim.network import RELIABLE, UNRELIABLE_2015
from distlab.sim.paxos.lab import PaxosLab

MakeLab = Callable[..., PaxosLab]

def decided_by(lab: PaxosLab, value: bytes) -> int:
    slot = lab.slot_of(value)
    return lab.ndecided(slot) if slot is not None else 0


def switch_sides(lab: PaxosLab, *, unreliable: bool, iterations: int = 20) -> list[NodeId]:
    """The lab's peers 0-4 as (leader, stays, switches, minority, minority): the switching
    peer sides with the leader while a value is decided, then with the old minority, which
    elects a new leader that only the switching peer can tell about the value. Twenty times,
    each with the peers named afresh around the current leader. On the unreliable network
    every peer's client offers a value, as in the lab; otherwise the leader's and a
    minority peer's. The leaders, in turn."""
    rng = Random(lab.seed)
    leaders = []
    for iteration in range(iterations):
        leader = lab.wait_leader()
        leaders.append(leader)
        stays, switches, *minority = rng.sample([n for n in lab.ids if n != leader], 4)
        if unreliable:
            lab.set_network(UNRELIABLE_2015)
        lab.partition([[leader, stays, switches], minority])
        offering = lab.ids if unreliable else [leader, minority[0]]
        values = {node: f"{iteration}.n{node}".encode() for node in offering}
        for node, value in values.items():
            lab.offer(value, via=node)
        slot = lab.wait_decided(values[leader], 3, timeout_ms=10_000)
        assert lab.ndecided(slot) == 3, "a decision crossed the partition"
        assert all(lab.slot_of(values[node]) is None for node in minority if node in values), \
            "the minority decided"
        lab.partition([[leader, stays], [switches, *minority]])
        if unreliable:
            lab.set_network(RELIABLE)
        lab.wait_decided(values[leader], 5, timeout_ms=10_000)
        # The switching peer's side is a majority now: it decides the minority's values.
        for node in minority:
            if node in values:
                lab.wait_decided(values[node], 3, timeout_ms=10_000)
    return leaders


def test_one_peer_switches_partitions(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(5)
    leaders = switch_sides(lab, unreliable=False)
    assert lab.check_agreement() >= 2 * 20
    assert all(a != b for a, b in pairwise(leaders)), leaders


def test_one_peer_switches_partitions_on_an_unreliable_network(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(5)
    leaders = switch_sides(lab, unreliable=True)
    assert lab.check_agreement() >= 3 * 20
    assert all(a != b for a, b in pairwise(leaders)), leaders
    assert lab.world.network.messages_lost > 0


def test_lots_of_requests_while_partitions_change(make_paxos_lab: MakeLab) -> None:
    """TestLots: for 20 s of virtual time the five peers are repartitioned at random (each
    into one of three sides) every 0-200 ms on an unreliable network, while every peer's
    client offers a value of a new round every 0-300 ms whenever fewer than ten rounds are
    undecided somewhere. Then the network heals: every value is decided by a majority, and
    every member applied the same command at every slot. The group's invariant checker
    watches every Ready throughout."""
    lab = make_paxos_lab(5, conditions=UNRELIABLE_2015)
    rng = Random(lab.seed)
    rounds: list[list[bytes]] = []
    repartitions = 0
    next_partition = next_round = next_check = 0.0
    while lab.now_ms < 20_000:
        if lab.now_ms >= next_partition:
            sides: list[list[NodeId]] = [[], [], []]
            for node in lab.ids:
                sides[rng.randrange(3)].append(node)
            lab.partition([side for side in sides if side])
            repartitions += 1
            next_partition = lab.now_ms + rng.randrange(200)
        if lab.now_ms >= next_round:
            undecided = sum(1 for values in rounds
                            if not any(decided_by(lab, value) == 5 for value in values))
            if undecided < 10:
                values = [f"{len(rounds)}.{node}.{rng.randrange(10)}".encode()
                          for node in lab.ids]
                for node, value in zip(lab.ids, values, strict=True):
                    lab.offer(value, via=node)
                rounds.append(values)
            next_round = lab.now_ms + rng.randrange(300)
        if lab.now_ms >= next_check:
            lab.check_agreement()
            next_check = lab.now_ms + rng.randrange(300)
        lab.run_for(max(1.0, min(next_partition, next_round, next_check) - lab.now_ms))

    lab.set_network(RELIABLE)
    lab.heal()
    lab.run_for(5_000)
    offered = [value for values in rounds for value in values]
    for value in offered:
        lab.wait_decided(value, 3, timeout_ms=5_000)
    last = max(lab.max_slot(node) for node in lab.ids)
    assert all(lab.ndecided(slot) in (0, 5) for slot in range(1, last + 1))
    assert lab.invariants.checks > 1_000
    assert len(lab.invariants.chosen) >= len(offered)  # the checker saw each one chosen
    assert repartitions >= 150
    assert len(rounds) >= 20, f"only {len(rounds)} rounds started"
