"""The `txn-crash` nemesis: which transaction fault each window arms (drawn from the run's
seed), what it needs, and how the bank checker reads what a crashed coordinator left."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from distlab.check import Outage, check_bank, parse_txn_history
from distlab.check._bank import MIN_OUTAGE_SECONDS
from distlab.check.tester.schedule import (
    FAULTS,
    TXN_CRASH_MOMENTS,
    choose_txn_crash,
    is_kill,
    is_txn_crash,
    parse_nemesis,
    plan_schedule,
)
from distlab.core.ids import NodeId
from distlab.ops.tester.nemesis import Nemesis, NemesisError
from distlab.runtime.txn.driver import CRASH_POINTS
from distlab.wire.addresses import Address


def test_the_moments_are_the_crash_points_a_node_can_be_armed_with() -> None:
    assert sorted(TXN_CRASH_MOMENTS.values()) == sorted(CRASH_POINTS)
    for moment in TXN_CRASH_MOMENTS:
        assert f"txn-crash-{moment}" in FAULTS


def test_txn_crash_faults_parse_and_schedule_like_the_others() -> None:
    faults = parse_nemesis("kill,txn-crash,txn-crash-commit-logged")
    assert faults == ("kill", "txn-crash", "txn-crash-commit-logged")
    assert [is_txn_crash(f) for f in faults] == [False, True, True]
    assert not is_kill("txn-crash")
    planned = plan_schedule(faults, 5, 30)
    assert [w.fault for w in planned] == list(faults)
    assert [(w.start, w.end) for w in planned] == [(5, 10), (15, 20), (25, 30)]


def test_a_named_moment_always_arms_its_fault() -> None:
    rng = random.Random(3)
    assert {choose_txn_crash("txn-crash-commit-logged", rng) for _ in range(20)} == \
        {"coordinator-crash-after-commit-logged"}
    with pytest.raises(ValueError, match="unknown transaction crash"):
        choose_txn_crash("txn-crash-later", rng)


def test_txn_crash_draws_every_moment_and_a_seed_replays_the_draws() -> None:
    first = [choose_txn_crash("txn-crash", random.Random("7/nemesis")) for _ in range(1)]
    draws = [choose_txn_crash("txn-crash", rng)
             for rng in [random.Random("7/nemesis")] for _ in range(200)]
    again = [choose_txn_crash("txn-crash", rng)
             for rng in [random.Random("7/nemesis")] for _ in range(200)]
    assert draws == again and draws[0] == first[0]
    assert set(Counter(draws)) == set(CRASH_POINTS)


async def test_txn_crash_needs_control_of_the_node_processes() -> None:
    # Built on a running loop, as the tester builds it: its injector opens aio channels.
    nemesis = Nemesis({NodeId(n): Address("127.0.0.1", 1 + n) for n in (1, 2, 3)},
                      random.Random(1))
    try:
        with pytest.raises(NemesisError, match="txn-crash needs the node processes"):
            nemesis.check_supported("txn-crash")
    finally:
        await nemesis.close()


HISTORY = "".join(
    f'{{"type":"{kind}","f":"txn","process":{process},"value":{value},"time":{i * 10}}}\n'
    for i, (kind, process, value) in enumerate([
        ("invoke", 0, '[["w","a",10],["w","b",10]]'),
        ("ok", 0, '[["w","a",10],["w","b",10]]'),
        ("invoke", 1, '[["add","a",-3],["add","b",3]]'),
        ("info", 1, "null")]))


def entry(node: int, coordinator: int, txn: str = "t1") -> dict[str, object]:
    return {"node": node, "id": txn, "role": "participant", "state": "prepared",
            "coordinator": coordinator, "age_seconds": 4.2, "locks": ["b:X"]}


def check_outage(outage: Outage) -> list[str]:
    result = check_bank(parse_txn_history(HISTORY, timestamps=False), ["a", "b"],
                        {"a": 7, "b": 13},
                        outages=[outage])
    assert result.valid
    return [blocked.describe() for blocked in result.blocked]


def test_an_outage_blocks_what_the_crashed_coordinator_left_in_doubt() -> None:
    unfinished = (entry(2, 1), entry(3, 1), entry(3, 2, "t2"), entry(1, 1, "t3"))
    [line] = check_outage(Outage(1, MIN_OUTAGE_SECONDS + 1, unfinished, 5))
    # Only t1: t2's coordinator is up, t3 is the crashed node's own.
    assert line.startswith("transaction t1 prepared for 4.2 s on nodes 2, 3 while its "
                           f"coordinator, node 1, was down {MIN_OUTAGE_SECONDS + 1:.1f} s")


def test_a_short_outage_blocks_nothing() -> None:
    assert check_outage(Outage(1, MIN_OUTAGE_SECONDS / 2, (entry(2, 1),), 5)) == []
