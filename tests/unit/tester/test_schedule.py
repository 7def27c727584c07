"""The fault schedule of `distlab test` and the shapes of its network partitions."""

from __future__ import annotations

import itertools
import random

import pytest

from distlab.check.tester.schedule import (
    FaultSchedule,
    Partition,
    PlannedFault,
    ScheduleError,
    choose_partition,
    describe_plan,
    fit_warning,
    halves,
    isolate,
    majorities_ring,
    parse_nemesis,
    plan_schedule,
    time_limit_for_each,
)
from distlab.core.ids import NodeId
from distlab.core.quorum import majority


def nodes(count: int) -> list[NodeId]:
    return [NodeId(n) for n in range(1, count + 1)]


def visible(partition: Partition, members: list[NodeId]) -> dict[NodeId, frozenset[NodeId]]:
    """Who each node can still talk to, itself included."""
    return {node: frozenset(peer for peer in members if peer == node
                            or partition.connected(node, peer)) for node in members}


# ---- the schedule ----

def test_faults_alternate_with_healthy_intervals_starting_healthy() -> None:
    assert plan_schedule(("kill", "pause", "partition"), 5, 40) == (
        PlannedFault(5, 10, "kill"),
        PlannedFault(15, 20, "pause"),
        PlannedFault(25, 30, "partition"),
        PlannedFault(35, 40, "kill"),
    )


def test_a_window_that_would_outlast_the_time_limit_is_left_out() -> None:
    planned = plan_schedule(("partition",), 10, 39)
    assert [(p.start, p.end) for p in planned] == [(10, 20)]
    assert plan_schedule(("kill",), 10, 19.9) == ()


def test_no_faults_means_no_windows() -> None:
    assert plan_schedule((), 5, 100) == ()


def test_each_healthy_interval_counts_from_when_the_heal_finished() -> None:
    schedule = FaultSchedule(("kill", "pause"), 5, 40)
    first = schedule.next_fault(0)
    assert first == PlannedFault(5, 10, "kill")
    # The killed node took 2.5 s to restart: the cluster still gets 5 healthy seconds.
    second = schedule.next_fault(12.5)
    assert second == PlannedFault(17.5, 22.5, "pause")
    assert schedule.next_fault(31) is None  # would end at 41, past the limit
    assert schedule.next_fault(29.0) == PlannedFault(34, 39, "kill")


def test_a_plan_with_slow_heals_moves_each_later_window_back() -> None:
    planned = plan_schedule(("kill", "pause", "partition"), 10, 60, heal_seconds=2)
    assert [(p.start, p.end, p.fault) for p in planned] == [(10, 20, "kill"),
                                                            (32, 42, "pause")]
    assert describe_plan(planned) == "10-20 s kill, 32-42 s pause"
    assert describe_plan(()) == "none"


def test_the_warning_names_the_faults_a_time_limit_leaves_out() -> None:
    faults = ("kill", "pause", "partition")
    # 40 s of 10 s windows after 10 s healthy stretches: kill and pause only.
    warning = fit_warning(faults, 10, 40)
    assert warning is not None
    assert warning.startswith("--time-limit 40 leaves no window for partition:")
    assert "try --time-limit 64 or --nemesis-interval 6" in warning
    # 60 s fits all three only if every heal is instant.
    warning = fit_warning(faults, 10, 60)
    assert warning is not None and "no window for partition once heals take" in warning
    assert time_limit_for_each(faults, 10) == 64
    assert fit_warning(faults, 10, 64) is None
    assert fit_warning(("kill",), 10, 20) is None  # the last heal may end after the limit
    assert fit_warning((), 10, 5) is None


@pytest.mark.parametrize(("count", "interval", "time_limit"),
                         [(3, 10, 40), (2, 7, 29), (4, 5, 31), (5, 10, 100)])
def test_the_interval_the_warning_offers_fits_every_fault(count: int, interval: float,
                                                          time_limit: float) -> None:
    faults = ("kill", "pause", "partition", "kill-leader", "pause-leader")[:count]
    warning = fit_warning(faults, interval, time_limit)
    assert warning is not None
    offered = float(warning.rsplit("--nemesis-interval ", 1)[1])
    assert fit_warning(faults, offered, time_limit) is None


def test_schedule_needs_positive_interval_and_limit() -> None:
    with pytest.raises(ScheduleError):
        plan_schedule(("kill",), 0, 10)
    with pytest.raises(ScheduleError):
        FaultSchedule(("kill",), 5, -1)


@pytest.mark.parametrize(("text", "expected"), [
    ("kill,pause,partition", ("kill", "pause", "partition")),
    (" partition-isolate-leader ", ("partition-isolate-leader",)),
    ("pause-leader,partition-majorities-ring", ("pause-leader", "partition-majorities-ring")),
    ("none", ()),
])
def test_parse_nemesis(text: str, expected: tuple[str, ...]) -> None:
    assert parse_nemesis(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("kill,none", "cannot be combined"),
    ("kill,explode", "unknown fault 'explode'"),
    ("kill,kill", "listed twice"),
    ("kill,,pause", "empty entry"),
])
def test_bad_nemesis_lists_are_refused(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_nemesis(text)


# ---- partitions ----

@pytest.mark.parametrize("size", [3, 4, 5, 7])
def test_halves_cut_every_link_between_the_two_groups_and_no_other(size: int) -> None:
    members = nodes(size)
    for seed in range(20):
        partition = halves(members, random.Random(seed))
        seen = visible(partition, members)
        groups = {view for view in seen.values()}
        assert sorted(len(group) for group in groups) == [size // 2, size - size // 2]
        small, large = sorted(groups, key=len)
        assert small | large == set(members) and not small & large
        assert partition.cuts == {(min(a, b), max(a, b)) for a in small for b in large}


def test_isolation_is_symmetric_and_matches_the_cuts() -> None:
    members = nodes(5)
    partition = isolate(members, NodeId(3))
    isolation = partition.isolation(members)
    assert isolation[NodeId(3)] == {1, 2, 4, 5}
    for node in (1, 2, 4, 5):
        assert isolation[NodeId(node)] == {3}
    assert partition.description == "3 | 1 2 4 5"


def test_isolate_refuses_a_stranger() -> None:
    with pytest.raises(ValueError, match="not one of"):
        isolate(nodes(3), NodeId(9))


@pytest.mark.parametrize("size", [3, 4, 5, 6, 7, 9])
def test_majorities_ring_gives_every_node_its_own_majority(size: int) -> None:
    members = nodes(size)
    for seed in range(25):
        partition = majorities_ring(members, random.Random(seed))
        seen = visible(partition, members)
        assert partition.cuts, "a ring that cuts nothing is no partition"
        for node, view in seen.items():
            assert node in view
            assert len(view) >= majority(size), (node, view)
        assert len(set(seen.values())) == size, "two nodes see the same majority"


def test_majorities_ring_of_three_is_a_bridge() -> None:
    partition = majorities_ring(nodes(3), random.Random(3))
    assert len(partition.cuts) == 1
    assert partition.description.startswith("bridge")


def test_isolate_leader_targets_the_leader_and_falls_back_to_a_random_node() -> None:
    members = nodes(5)
    partition = choose_partition("partition-isolate-leader", members, random.Random(1),
                                 leader=NodeId(4))
    assert partition.isolation(members)[NodeId(4)] == {1, 2, 3, 5}
    fallback = choose_partition("partition-isolate-leader", members, random.Random(1),
                                leader=None)
    assert any(len(peers) == 4 for peers in fallback.isolation(members).values())


def test_plain_partition_draws_every_shape_and_named_ones_stick_to_theirs() -> None:
    members = nodes(5)
    shapes = {choose_partition("partition", members, random.Random(seed), None).shape
              for seed in range(60)}
    assert shapes == {"halves", "isolate-one", "majorities-ring"}
    for shape in ("halves", "isolate-one", "majorities-ring"):
        drawn = {choose_partition(f"partition-{shape}", members, random.Random(seed),
                                  None).shape for seed in range(10)}
        assert drawn == {shape}


def test_the_same_seed_gives_the_same_partitions() -> None:
    members = nodes(5)

    def draws(seed: int) -> list[frozenset[tuple[NodeId, NodeId]]]:
        rng = random.Random(seed)
        return [choose_partition("partition", members, rng, None).cuts
                for _ in itertools.repeat(None, 10)]

    assert draws(11) == draws(11)
    assert draws(11) != draws(12)
