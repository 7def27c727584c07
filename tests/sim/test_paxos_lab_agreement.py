"""The 6.824 (2015) Paxos lab's agreement tests on the simulator: one and many proposers,
and the RPC counts of serial and concurrent agreements on three peers."""

from __future__ import annotations

from collections.abc import Callable

from distlab.sim.paxos.lab import PaxosLab

MakeLab = Callable[..., PaxosLab]


def test_single_proposer_agreement(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(5)
    leader = lab.wait_leader()
    assert lab.start(leader, b"hello")
    slot = lab.wait_decided(b"hello", 5)
    assert lab.ndecided(slot) == 5


def test_only_the_leader_takes_a_proposal(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3)
    leader = lab.wait_leader()
    taken = [node for node in lab.ids if lab.start(node, f"v{node}".encode())]
    assert taken == [leader]
    lab.wait_decided(f"v{leader}".encode(), 3)


def test_many_proposers_at_once_agree(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3)
    for node in lab.ids:
        lab.campaign(node)  # three scouts with crossing ballots
    values = [f"x{i}".encode() for i in range(6)]
    for value in values:
        lab.submit(value)
    slots = [lab.wait_decided(value, 3) for value in values]
    assert len(set(slots)) == len(values)
    for slot in range(1, max(slots) + 1):
        assert lab.ndecided(slot) in (0, 3)  # never two values; fails inside if so


def test_rpc_counts_of_serial_and_concurrent_agreements(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3)
    npaxos = 3
    for i in range(5):
        lab.submit(f"serial{i}".encode())
        lab.wait_decided(f"serial{i}".encode(), npaxos)
    serial = lab.requests
    # The lab allows, per agreement, one prepare, one accept and one decide to each peer:
    # 45 RPCs (a request and its reply are one RPC), the election and heartbeats included.
    assert serial <= 5 * npaxos * npaxos, serial
    for i in range(5):
        for node in lab.ids:
            lab.start(node, f"c{i}.{node}".encode())
        lab.submit(f"c{i}".encode())
        lab.wait_decided(f"c{i}".encode(), npaxos)
    assert lab.requests - serial <= 5 * npaxos * 15, lab.requests - serial
