"""Multi-Paxos in the simulator: its engine, invariants, durable format and bug catalogue.

It registers with the shared harness, so `distlab sim paxos` runs the real core under the
real driver on the same worlds, faults, KV clients, linearizability check and shrinking as
Raft does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import BUG_CATALOGUE
from distlab.runtime.host.driver import Timing
from distlab.sim import harness
from distlab.sim.faults import Fault, FaultKind
from distlab.sim.paxos.engine import PaxosEngine, PaxosOptions
from distlab.sim.world import World

TICK_SECONDS = 0.025


def draw_options(rng: Random) -> PaxosOptions:
    return PaxosOptions(
        election_ticks=12,
        heartbeat_ticks=4,
        backoff_ticks=rng.choice((4, 8, 12)),
        max_inflight_slots=rng.choice((1, 4, 64)),
        max_entries_per_message=rng.choice((1, 8, 64)),
        pre_prepare=rng.random() < 0.8,
        check_quorum=rng.random() < 0.8,
        snapshot_entries=rng.choice((1 << 30, 1 << 30, 12, 40)),
    )


def plant(options: PaxosOptions, bugs: frozenset[str]) -> PaxosOptions:
    return replace(options, planted_bugs=bugs) if bugs else options


def make_engine(world: World, options: PaxosOptions) -> PaxosEngine:
    return PaxosEngine(world, options)


def timing(options: PaxosOptions) -> Timing:
    return Timing(tick_seconds=TICK_SECONDS, snapshot_entries=options.snapshot_entries)


def _campaign(world: World, fault: Fault) -> None:
    """A member starts a scout now, whoever leads: dueling proposers, preemption, backoff."""
    group, node = int(fault.values[0]), fault.nodes[0]
    driver = world.driver(node, group)
    if driver is not None:
        world.loop.create_task(driver.request(lambda core: core.campaign()))


def _draw_campaign(at: float, rng: Random, nodes: Sequence[NodeId], groups: int) -> Fault:
    return Fault(at, "campaign", (rng.choice(nodes),), (rng.randrange(groups),))


CAMPAIGN = harness.ExtraFault(
    weight=4, draw=_draw_campaign,
    kind=FaultKind("network", lambda f: f"n{f.nodes[0]} tries to lead group "
                   f"{int(f.values[0])} with a higher ballot", _campaign))

# How a sweep hunts the bugs that the default runs take long to show.
TUNING = {
    # A stale read needs a deposed leader that keeps serving while a new one takes writes:
    # leaders cut off from the rest and little else going wrong, no check-quorum to make
    # them step down, few keys, mostly reads.
    "read-without-confirm": harness.Tuning(
        options=lambda options: replace(options, check_quorum=False),
        weights={"isolate-leader": 20, "heal": 2, "restart": 4, "partition": 2,
                 "crash": 0, "crash-leader": 0, "crash-new-leader": 0, "power-loss": 0,
                 "power-loss-in-fsync": 0, "corrupt": 0, "fail-fsync": 0, "campaign": 0},
        workload={"keys": 2, "clients": 5, "mix": (6, 3, 1, 0)},
        networks=("reliable", "reordering"),
    ),
}

SPEC = harness.ProtocolSpec(
    name="paxos",
    summary="Multi-Paxos groups under the real driver, KV store sharded over them",
    draw_options=draw_options,
    plant=plant,
    make_engine=make_engine,
    timing=timing,
    bugs=BUG_CATALOGUE,
    extra_faults={"campaign": CAMPAIGN},
    tuning=TUNING,
)

harness.register(SPEC)
