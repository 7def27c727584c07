"""The 6.824 (2015) Paxos lab's forgetting tests on the simulator: slots every peer applied
are freed (Done/Min), a dead peer holds the Min back, and a peer too far behind catches up
from a snapshot."""

from __future__ import annotations

from collections.abc import Callable

from distlab.core.ids import NodeId
from distlab.sim.paxos.lab import PaxosLab

MakeLab = Callable[..., PaxosLab]


def test_slots_every_peer_applied_are_forgotten(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(6)
    for node in lab.ids:
        assert lab.forgotten_through(node) == 0
    for i in range(10):
        lab.submit(f"v{i}".encode())
    lab.wait_decided(b"v9", 6)
    last = lab.slot_of(b"v9")
    assert last is not None
    assert lab.run_until(lambda: all(lab.forgotten_through(n) >= last for n in lab.ids), 2_000)
    for node in lab.ids:
        core = lab.core(node)
        assert core is not None
        assert not [slot for slot in (*core.decided, *core.accepted) if slot <= last]


def test_a_dead_peer_holds_the_min_back(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3)
    lab.submit(b"first")
    lab.wait_decided(b"first", 3)
    dead = next(node for node in lab.ids if node not in lab.leaders())
    lab.crash(dead)
    for i in range(5):
        lab.submit(f"v{i}".encode())
    lab.wait_decided(b"v4", 2)
    lab.run_for(1_000)
    held = lab.slot_of(b"first")
    assert held is not None
    alive = [node for node in lab.ids if node != dead]
    assert all(lab.forgotten_through(node) <= held for node in alive)
    lab.restart(dead)
    lab.wait_decided(b"v4", 3)
    last = lab.slot_of(b"v4")
    assert last is not None
    assert lab.run_until(lambda: all(lab.forgotten_through(n) >= last for n in lab.ids), 2_000)


def test_a_peer_far_behind_catches_up_from_a_snapshot(make_paxos_lab: MakeLab) -> None:
    lab = make_paxos_lab(3, snapshot_every=5)
    lab.submit(b"first")
    lab.wait_decided(b"first", 3)
    behind = next(node for node in lab.ids if node not in lab.leaders())
    lab.crash(behind)
    for i in range(20):
        lab.submit(f"v{i}".encode())
    lab.wait_decided(b"v19", 2)
    assert lab.snapshots_sent == 0
    lab.restart(behind)
    lab.wait_decided(b"v19", 3)
    assert lab.snapshots_sent >= 1  # the others no longer hold the slots it missed
    core = lab.core(NodeId(behind))
    assert core is not None and core.snapshot is not None
    assert lab.applied(behind) == lab.applied(lab.wait_leader())


def test_max_survives_forgetting_and_numbering_goes_on(make_paxos_lab: MakeLab) -> None:
    # TestDoneMax: once every peer is done with every slot and the slots are freed, Max
    # still names the highest slot; and a new leader, which finds nothing left to adopt,
    # carries on after it rather than reusing freed slots.
    lab = make_paxos_lab(3)
    for i in range(11):
        lab.submit(f"y{i}".encode())
        lab.wait_decided(f"y{i}".encode(), 3)
    last = lab.slot_of(b"y10")
    assert last is not None
    assert lab.run_until(lambda: all(lab.forgotten_through(n) >= last for n in lab.ids), 2_000)
    for node in lab.ids:
        core = lab.core(node)
        assert core is not None and not core.accepted and not core.decided
        assert lab.max_slot(node) == last
    old = lab.wait_leader()
    lab.crash(old)
    assert lab.run_until(lambda: any(n != old for n in lab.leaders()), 5_000)
    lab.submit(b"z")
    assert lab.wait_decided(b"z", 2) == last + 1
    lab.restart(old)
    lab.wait_decided(b"z", 3)
    assert all(lab.max_slot(node) == last + 1 for node in lab.ids)
    lab.check_agreement()
    assert all(lab.applied(node)[last + 1] == b"z" for node in lab.ids)
