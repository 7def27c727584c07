"""The external-consistency workload's choices that need no cluster: accounts spread over
every group, and pairs from the group led by the fastest clock to the slowest's."""

from __future__ import annotations

from pathlib import Path
from random import Random

from distlab.check import HistoryRecorder
from distlab.core.ids import NodeId
from distlab.ops.tester.external import ExternalWorkload, spread_accounts
from distlab.wire.addresses import Address
from distlab.wire.sharding import group_of


def test_accounts_are_spread_over_every_group() -> None:
    for total, groups in ((6, 3), (7, 3), (4, 2), (10, 5)):
        accounts = spread_accounts(total, groups)
        assert len(set(accounts)) == total
        per_group = [sum(group_of(name, groups) == g for name in accounts)
                     for g in range(groups)]
        assert max(per_group) - min(per_group) <= 1 and min(per_group) >= total // groups


def workload(tmp_path: Path, skews: dict[NodeId, float] | None) -> ExternalWorkload:
    addresses = {NodeId(n): Address("127.0.0.1", 7000 + n) for n in (1, 2, 3)}
    return ExternalWorkload(HistoryRecorder(tmp_path / "h.jsonl"), addresses, None, 10.0, 1,
                            1.0, Random(3), skews)


def test_pairs_go_from_the_fastest_clock_to_the_slowest(tmp_path: Path) -> None:
    chosen = workload(tmp_path, {NodeId(1): -3.0, NodeId(2): 0.0, NodeId(3): 3.0})
    chosen._groups = 3
    chosen._leaders = {0: NodeId(2), 1: NodeId(3), 2: NodeId(1)}
    assert {chosen._exposing_groups() for _ in range(20)} == {(1, 2)}
    # Leadership moved: node 3 leads nothing, node 2 now leads group 1.
    chosen._leaders = {0: NodeId(2), 1: NodeId(2), 2: NodeId(1)}
    assert {chosen._exposing_groups() for _ in range(20)} == {(0, 2), (1, 2)}


def test_without_skews_or_apart_leaders_pairs_take_any_two_groups(tmp_path: Path) -> None:
    unskewed = workload(tmp_path, None)
    unskewed._groups = 3
    unskewed._leaders = {0: NodeId(2), 1: NodeId(3), 2: NodeId(1)}
    pairs = {unskewed._exposing_groups() for _ in range(200)}
    assert pairs == {(a, b) for a in range(3) for b in range(3) if a != b}
    together = workload(tmp_path, {NodeId(1): -3.0, NodeId(2): 0.0, NodeId(3): 3.0})
    together._groups = 3
    together._leaders = {0: NodeId(3), 1: NodeId(3), 2: NodeId(3)}
    assert all(a != b for a, b in (together._exposing_groups() for _ in range(50)))
