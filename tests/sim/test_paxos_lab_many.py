"""The 6.824 (2015) Paxos lab's tests of many instances on the simulator: instances decided
out of order, many instances proposed concurrently by every peer (TestMany), the same on the
labs' unreliable network (TestManyUnreliable), and forgetting on it (TestManyForget)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from random import Random

from distlab.core.ids import NodeId
from distlab.sim.network import REORDERING, UNRELIABLE_2015
from distlab.sim.paxos.lab import LAB_OPTIONS, PaxosLab

MakeLab = Callable[..., PaxosLab]


def assert_all_agree(lab: PaxosLab, values: list[bytes]) -> None:
    """Every value applied by every member, and every member applied the same log."""
    missing = [value for value in values if lab.slot_of(value) is None]
    assert not missing, f"{len(missing)} values never decided, first {missing[0]!r}"
    logs = {node: lab.applied(node) for node in lab.ids}
    reference = logs[lab.ids[0]]
    for node, log in logs.items():
        assert log == reference, f"n{node} applied another log than n{lab.ids[0]}"
    applied = set(reference.values())
    assert all(value in applied for value in values)


def fully_decided(lab: PaxosLab, values: list[bytes]) -> bool:
    for value in values:
        slot = lab.slot_of(value)
        if slot is None or lab.ndecided(slot) < len(lab.ids):
            return False
    return True


def test_instances_decided_out_of_order_are_applied_in_order(make_paxos_lab: MakeLab) -> None:
    # One slot per Accept on a network whose delays cross: later slots are chosen before
    # earlier ones, as the lab starts instance 7 before 6 and 5, and those before 4 and 3.
    lab = make_paxos_lab(3, options=replace(LAB_OPTIONS, max_entries_per_message=1),
                         conditions=REORDERING)
    values = [f"{instance}00".encode() for instance in range(3, 13)]
    for value in values:
        lab.offer(value)
    for value in values:
        lab.wait_decided(value, 3)
    orders = list(lab.decision_order.values())
    assert any(learned != sorted(learned) for learned in orders), \
        f"every member learned its decisions in slot order: {orders}"
    assert_all_agree(lab, values)
    for node in lab.ids:
        assert list(lab.applied(node)) == sorted(lab.applied(node))


def test_many_instances_proposed_by_every_peer_are_all_decided(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3)
    for node in lab.ids:
        lab.campaign(node)
        lab.offer(b"0", via=node)
    values = run_rounds(lab, rounds=50, in_progress=5)
    assert_all_agree(lab, values)
    assert len(lab.applied(lab.ids[0])) >= len(values)


def test_many_instances_on_an_unreliable_network(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3, conditions=UNRELIABLE_2015)
    for node in lab.ids:
        lab.offer(b"0", via=node)
    values = run_rounds(lab, rounds=50, in_progress=3)
    assert_all_agree(lab, values)
    network = lab.world.network
    assert network.messages_lost > network.messages_sent / 20  # the loss was real


def run_rounds(lab: PaxosLab, *, rounds: int, in_progress: int) -> list[bytes]:
    """The lab's TestMany loop: in each round every peer's client offers its own value,
    with at most `in_progress` rounds not yet decided everywhere."""
    offered: list[list[bytes]] = []
    for seq in range(1, rounds):
        if seq > in_progress:
            earlier = offered[seq - 1 - in_progress]
            assert lab.run_until(lambda values=earlier: fully_decided(lab, values), 10_000), \
                f"round {seq - in_progress} not decided everywhere"
        round_values = []
        for index, node in enumerate(lab.ids):
            value = f"{seq * 10 + index}".encode()
            lab.offer(value, via=node)
            round_values.append(value)
        offered.append(round_values)
    values = [value for round_values in offered for value in round_values]
    assert lab.run_until(lambda: fully_decided(lab, values), 20_000), "not all decided"
    return values


def test_forgetting_keeps_up_on_an_unreliable_network(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3, conditions=UNRELIABLE_2015)
    rng = Random(lab.seed)
    values = [f"f{i}".encode() for i in range(20)]
    for value in rng.sample(values, len(values)):
        lab.offer(value, via=NodeId(rng.choice(lab.ids)))
        lab.run_for(rng.randrange(30))
    assert lab.run_until(lambda: fully_decided(lab, values), 20_000)
    assert_all_agree(lab, values)
    last = max(slot for value in values if (slot := lab.slot_of(value)) is not None)
    assert lab.run_until(lambda: all(lab.forgotten_through(n) >= last for n in lab.ids),
                         5_000), [lab.forgotten_through(n) for n in lab.ids]
    for node in lab.ids:
        core = lab.core(node)
        assert core is not None
        assert not [slot for slot in (*core.decided, *core.accepted) if slot <= last]
