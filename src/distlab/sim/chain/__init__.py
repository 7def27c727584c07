"""Chain replication and CRAQ in the simulator: the master on group 0's Raft, one replica per
node, their invariants, clients and bug catalogue."""

from __future__ import annotations

from dataclasses import replace
from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.chain import BUG_CATALOGUE, ChainMaster
from distlab.runtime.host.driver import Timing
from distlab.sim import harness
from distlab.sim.chain.engine import ChainEngine, ChainOptions
from distlab.sim.chain.workload import ChainWorkload
from distlab.sim.raft.engine import RaftOptions
from distlab.sim.workload import WorkloadSettings
from distlab.sim.world import World

TICK_SECONDS = 0.025
READ_MODES = ("cr", "craq")


def draw_options(rng: Random) -> ChainOptions:
    raft = RaftOptions(election_ticks=12, heartbeat_ticks=4, pre_vote=True, check_quorum=True,
                       max_inflight_appends=rng.choice((4, 8)))
    return ChainOptions(raft=raft, read_mode=rng.choice(READ_MODES))


def plant(options: ChainOptions, bugs: frozenset[str]) -> ChainOptions:
    return replace(options, planted_bugs=bugs) if bugs else options


def make_engine(world: World, options: ChainOptions) -> ChainEngine:
    return ChainEngine(world, options)


def timing(options: ChainOptions) -> Timing:
    return Timing(tick_seconds=TICK_SECONDS)


def chain_master(voters: frozenset[NodeId]) -> ChainMaster:
    return ChainMaster()


def make_workload(world: World, rng: Random, settings: WorkloadSettings) -> ChainWorkload:
    engine = world.engine
    assert isinstance(engine, ChainEngine)
    return ChainWorkload(world, rng, settings, engine.options.read_mode)


def _read_mode(options: ChainOptions, value: str) -> ChainOptions:
    return replace(options, read_mode=value)


TUNING = {
    # An older configuration reaches a replica when its node's copy of the master lags the
    # answer a renewal brought from the leader: many reconfigurations (crashes, restarts,
    # cut-off replicas) and a slow network.
    "stale-epoch-accepted": harness.Tuning(
        weights={"crash": 10, "restart": 14, "isolate-leader": 8, "partition": 8,
                 "crash-leader": 8},
        networks=("unreliable", "long-reordering")),
    # A dirty read needs CRAQ reads of keys with writes in flight.
    "dirty-read": harness.Tuning(
        options=lambda options: replace(options, read_mode="craq"),
        workload={"keys": 2, "clients": 5}),
}

SPEC = harness.ProtocolSpec(
    name="chain",
    summary="chain replication (CR or CRAQ reads), its master on group 0's Raft",
    draw_options=draw_options,
    plant=plant,
    make_engine=make_engine,
    timing=timing,
    bugs=BUG_CATALOGUE,
    tuning=TUNING,
    make_workload=make_workload,
    chain_master=chain_master,
    group_choices=(1,),
    variants={"read-mode": (READ_MODES, _read_mode)},
)

harness.register(SPEC)
