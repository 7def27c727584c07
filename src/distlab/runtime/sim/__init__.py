"""Deterministic simulation: virtual time, a seeded faulty network, crash and restart.

`Simulation` runs Raft cores on one event queue; `LabCluster` adds the 6.5840 tester's
checks; `run_seed` and `sweep` drive random fault schedules with every invariant checked.
"""

from distlab.runtime.sim.invariants import InvariantChecker, InvariantViolation
from distlab.runtime.sim.lab import LabCluster
from distlab.runtime.sim.network import (
    DUPLICATING,
    LONG_REORDERING,
    RELIABLE,
    UNRELIABLE,
    Network,
    NetworkConditions,
)
from distlab.runtime.sim.swarm import RunResult, run_seed, sweep
from distlab.runtime.sim.world import SimOptions, Simulation, SimulationFailure

__all__ = [
    "DUPLICATING",
    "LONG_REORDERING",
    "RELIABLE",
    "UNRELIABLE",
    "InvariantChecker",
    "InvariantViolation",
    "LabCluster",
    "Network",
    "NetworkConditions",
    "RunResult",
    "SimOptions",
    "Simulation",
    "SimulationFailure",
    "run_seed",
    "sweep",
]
