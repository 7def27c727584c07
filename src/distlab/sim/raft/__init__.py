"""Raft in the simulator: its engine, invariants, durable format, bugs and lab scenarios."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.raft import BUG_CATALOGUE
from distlab.runtime.host.driver import Timing
from distlab.sim import harness
from distlab.sim.faults import Fault, FaultKind
from distlab.sim.raft.engine import RaftEngine, RaftOptions
from distlab.sim.world import World

TICK_SECONDS = 0.025


def draw_options(rng: Random) -> RaftOptions:
    return RaftOptions(
        election_ticks=12,
        heartbeat_ticks=4,
        max_inflight_appends=rng.choice((1, 4, 8)),
        max_entries_per_message=rng.choice((1, 8, 64)),
        pre_vote=rng.random() < 0.8,
        check_quorum=rng.random() < 0.8,
        snapshot_entries=rng.choice((1 << 30, 1 << 30, 12, 40)),
    )


def plant(options: RaftOptions, bugs: frozenset[str]) -> RaftOptions:
    return replace(options, planted_bugs=bugs) if bugs else options


def make_engine(world: World, options: RaftOptions) -> RaftEngine:
    return RaftEngine(world, options)


def timing(options: RaftOptions) -> Timing:
    return Timing(tick_seconds=TICK_SECONDS, snapshot_entries=options.snapshot_entries)


def _transfer_leadership(world: World, fault: Fault) -> None:
    """The group's leader hands over to the target (TimeoutNow), as Admin asks it to."""
    group, target = int(fault.values[0]), fault.nodes[0]
    leaders = world.leaders(group)
    driver = world.driver(leaders[-1], group) if leaders else None
    if driver is not None:
        world.loop.create_task(driver.request(lambda core: core.transfer_leadership(target)))


def _draw_transfer(at: float, rng: Random, nodes: Sequence[NodeId], groups: int) -> Fault:
    return Fault(at, "transfer-leadership", (rng.choice(nodes),), (rng.randrange(groups),))


TRANSFER = harness.ExtraFault(
    weight=3, draw=_draw_transfer,
    kind=FaultKind("network", lambda f: f"the leader of group {int(f.values[0])} transfers "
                   f"leadership to n{f.nodes[0]}", _transfer_leadership))

# How a sweep hunts the bugs that the default runs take long to show.
TUNING = {
    # A stale read needs a deposed leader that keeps serving while a new one takes writes:
    # leaders cut off from the rest and nothing else going wrong, no check-quorum to make
    # them step down, few keys, mostly reads.
    "read-without-confirm": harness.Tuning(
        options=lambda options: replace(options, check_quorum=False),
        weights={"isolate-leader": 20, "heal": 2, "restart": 4, "partition": 2,
                 "crash": 0, "crash-leader": 0, "crash-new-leader": 0, "power-loss": 0,
                 "power-loss-in-fsync": 0, "corrupt": 0, "fail-fsync": 0,
                 "transfer-leadership": 0},
        workload={"keys": 2, "clients": 5, "mix": (6, 3, 1, 0)},
        networks=("reliable", "reordering"),
    ),
    # A stale vote must reach a candidate that has moved on to a newer term: frequent
    # elections (no pre-vote holding candidacies back, shorter timeouts, new leaders cut off
    # and killed) and vote replies held back by the network.
    "stale-vote-count": harness.Tuning(
        options=lambda options: replace(options, pre_vote=False, election_ticks=6,
                                        heartbeat_ticks=2),
        weights={"crash-new-leader": 6, "isolate-leader": 8},
        networks=("long-reordering", "unreliable+long-reordering"),
    ),
}

SPEC = harness.ProtocolSpec(
    name="raft",
    summary="Raft groups under the real driver, KV store sharded over them",
    draw_options=draw_options,
    plant=plant,
    make_engine=make_engine,
    timing=timing,
    bugs=BUG_CATALOGUE,
    tuning=TUNING,
    extra_faults={"transfer-leadership": TRANSFER},
)

harness.register(SPEC)
