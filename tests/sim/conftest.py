"""Simulation fixtures: clusters with a stable seed per test, named in every failure."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from distlab.sim.paxos.lab import PaxosLab
from distlab.sim.raft.lab import LabCluster, MakeCluster, SimOptions

CLUSTERS_KEY = pytest.StashKey[list[LabCluster]]()


def seed_for(name: str) -> int:
    """A stable seed per test; DISTLAB_SIM_SEED overrides it to explore other schedules."""
    override = os.environ.get("DISTLAB_SIM_SEED")
    return int(override) if override else zlib.crc32(name.encode()) % 100_000


@pytest.fixture
def make_cluster(request: pytest.FixtureRequest) -> Iterator[MakeCluster]:
    created: list[LabCluster] = []
    request.node.stash[CLUSTERS_KEY] = created

    def make(
        nodes: int = 3,
        *,
        unreliable: bool = False,
        snapshot_every: int = 0,
        seed: int | None = None,
        trace: bool = False,
    ) -> LabCluster:
        chosen = seed if seed is not None else seed_for(request.node.name) + len(created)
        cluster = LabCluster(
            chosen,
            nodes,
            unreliable=unreliable,
            options=SimOptions(snapshot_every=snapshot_every),
            trace=trace,
            replay_hint=f"DISTLAB_SIM_SEED={chosen - len(created)} pytest {request.node.nodeid}",
        )
        created.append(cluster)
        return cluster

    yield make
    for cluster in created:
        cluster.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    clusters = item.stash.get(CLUSTERS_KEY, [])
    if report.failed and clusters:
        lines = [f"seed={cluster.seed} nodes={cluster.n}" for cluster in clusters]
        lines.append(f"replay: DISTLAB_SIM_SEED={clusters[0].seed} pytest '{item.nodeid}'")
        report.sections.append(("simulation seeds", "\n".join(lines)))


@pytest.fixture
def make_paxos_lab(request: pytest.FixtureRequest) -> Iterator[Callable[..., PaxosLab]]:
    """Multi-Paxos lab clusters, seeded per test like `make_cluster`, closed afterwards."""
    created: list[PaxosLab] = []

    def make(nodes: int = 3, **options: Any) -> PaxosLab:
        lab = PaxosLab(seed_for(request.node.name) + len(created), nodes, **options)
        created.append(lab)
        return lab

    yield make
    for lab in created:
        lab.close()
