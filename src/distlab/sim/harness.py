"""The generic harness: protocols register here; a seed becomes a run; runs become sweeps.

A protocol registers a `ProtocolSpec`: how to draw its options from a seed, how to build its
engine (cores, durable format, invariants) for a world, its timing, its own fault kinds, and
its bug catalogue. Everything else is shared: the world of nodes and groups under the real
driver, the fault schedule, the KV clients and the linearizability check of their history.

One run, from a seed: draw the plan (cluster, options, network, clocks, disks, clients,
fault schedule), run the chaos phase while the clients work, heal everything, require the
cluster to make progress and every member to catch up, read every key, and check the
history. The plan can be given instead of drawn, with a reduced schedule: that is how
shrinking works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import multiprocessing
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from random import Random
from typing import Any

from distlab.apps.kv import KVStateMachine
from distlab.check import Verdict
from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.runtime.host.driver import Timing
from distlab.sim import faults
from distlab.sim.faults import Fault, FaultKind, FaultMix
from distlab.sim.network import PRESETS, RELIABLE, NetworkConditions
from distlab.sim.workload import Clients, KVWorkload, Workload, WorkloadSettings
from distlab.sim.world import Engine, NodeSettings, SimulationFailure, World

CLUSTER_SIZES = (3, 5, 7)
CHAOS_MS = 2_500.0
ALL_FAULTS = FaultMix()
# After healing, the cluster must commit and every member catch up within this long.
CONVERGE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Tuning:
    """How a sweep that hunts one planted bug shapes its runs, so that the bug shows within
    a few hundred seeds: which faults come more often, which options and workload."""

    weights: Mapping[str, int] = field(default_factory=dict)
    options: Callable[[Any], Any] | None = None
    workload: Mapping[str, Any] = field(default_factory=dict)
    networks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtraFault:
    """A fault kind of a protocol's own, drawn beside the shared ones."""

    weight: int
    kind: FaultKind
    # (at ms, the run's generator, the node ids, the number of groups) -> the event
    draw: Callable[[float, Random, Sequence[NodeId], int], Fault]


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """What a protocol registers with the harness."""

    name: str
    summary: str
    draw_options: Callable[[Random], Any]
    plant: Callable[[Any, frozenset[str]], Any]
    make_engine: Callable[[World, Any], Engine]
    timing: Callable[[Any], Timing]
    bugs: Mapping[str, str] = field(default_factory=dict)
    extra_faults: Mapping[str, ExtraFault] = field(default_factory=dict)
    # Its clients: by default the KV store's, whose history the linearizability checker reads.
    make_workload: Callable[[World, Random, WorkloadSettings], Workload] = KVWorkload
    # How to hunt each planted bug, where the default runs would take long to show it.
    tuning: Mapping[str, Tuning] = field(default_factory=dict)
    # How every run is shaped (before a bug's tuning): the fault weights and networks a
    # protocol's runs draw from, where the defaults do not fit it.
    shape: Tuning | None = None
    # Runs a plan, for a protocol whose nodes host no consensus groups (its own world and
    # clients); by default, `execute` below.
    run_plan: Callable[[RunPlan, bool, Callable[[str], object] | None],
                       tuple[RunResult, World]] | None = None
    # Whether `distlab sim` offers it by name (variants are reached through its options).
    listed: bool = True
    # The chain's master for group 0 (beside the KV store), given the initial voters.
    chain_master: Callable[[frozenset[NodeId]], StateMachine] | None = None
    # How many groups a run may draw (one of these, by seed).
    group_choices: tuple[int, ...] = (1, 2, 2, 3)
    # Options a command line may fix (`--read-mode craq`): name -> (choices, apply).
    variants: Mapping[str, tuple[tuple[str, ...], Callable[[Any, str], Any]]] = field(
        default_factory=dict)
    # Reshapes each node's drawn clock and disk (from the run's generator): a protocol whose
    # nodes' TrueTime must stay within its epsilon keeps their skew and drift inside it.
    node_settings: Callable[[Random, NodeSettings], NodeSettings] | None = None


PROTOCOLS: dict[str, ProtocolSpec] = {}


def register(spec: ProtocolSpec) -> None:
    if spec.name in PROTOCOLS:
        raise ValueError(f"protocol {spec.name!r} is already registered")
    PROTOCOLS[spec.name] = spec
    for name, extra in spec.extra_faults.items():
        faults.FAULT_KINDS.setdefault(name, extra.kind)


def protocol(name: str) -> ProtocolSpec:
    _load_builtin()
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; registered: "
                         f"{', '.join(sorted(PROTOCOLS))}") from None


def protocols() -> list[ProtocolSpec]:
    _load_builtin()
    return [PROTOCOLS[name] for name in sorted(PROTOCOLS) if PROTOCOLS[name].listed]


def _load_builtin() -> None:
    # Each registers itself.
    import distlab.sim.chain
    import distlab.sim.paxos
    import distlab.sim.raft
    import distlab.sim.txn
    import distlab.sim.txn.spanner  # noqa: F401


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything a run does, drawn from its seed; `schedule` may be replaced (shrinking)."""

    protocol: str
    seed: int
    nodes: int
    groups: int
    chaos_ms: float
    options: Any
    bugs: frozenset[str]
    conditions: NetworkConditions
    node_settings: tuple[NodeSettings, ...]
    workload: WorkloadSettings
    mix: FaultMix
    schedule: tuple[Fault, ...]
    workload_seed: int
    start_gaps_ms: tuple[float, ...]
    variants: tuple[tuple[str, str], ...] = ()

    def replay_command(self) -> str:
        bug = "".join(f" --bug {name}" for name in sorted(self.bugs))
        faults_off = "".join(f" --no-{family}-faults" for family in faults.FAMILIES
                             if not getattr(self.mix, family))
        unsynced = "" if self.mix.lose_unsynced else " --keep-unsynced"
        chaos = "" if self.chaos_ms == CHAOS_MS else f" --chaos-ms {self.chaos_ms:g}"
        fixed = "".join(f" --{name} {value}" for name, value in self.variants)
        return (f"distlab sim {self.protocol} --seed {self.seed} --nodes {self.nodes}"
                f"{fixed}{bug}{faults_off}{unsynced}{chaos}")


@dataclass(frozen=True, slots=True)
class RunResult:
    seed: int
    nodes: int
    groups: int
    ok: bool
    failure: str | None
    verdict: str
    virtual_ms: float
    messages: int
    operations: dict[str, int]
    detected_faults: tuple[str, ...]
    faults: int
    fingerprint: int

    @property
    def unknown(self) -> bool:
        return self.ok and self.verdict == Verdict.UNKNOWN.value

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed, "nodes": self.nodes, "groups": self.groups, "ok": self.ok,
            "failure": self.failure, "verdict": self.verdict,
            "virtual_ms": round(self.virtual_ms, 3), "messages": self.messages,
            "operations": self.operations, "detected_faults": list(self.detected_faults),
            "faults": self.faults,
        }


def nodes_for_seed(seed: int) -> int:
    return CLUSTER_SIZES[seed % len(CLUSTER_SIZES)]


def plan_run(spec: ProtocolSpec, seed: int, nodes: int | None = None, *,
             bugs: frozenset[str] = frozenset(), mix: FaultMix = ALL_FAULTS,
             chaos_ms: float = CHAOS_MS, variants: Mapping[str, str] | None = None) -> RunPlan:
    """Draw a run's plan from its seed: the same arguments always give the same plan."""
    unknown = bugs - set(spec.bugs)
    if unknown:
        raise ValueError(f"unknown bug {sorted(unknown)[0]!r} for {spec.name}")
    fixed = dict(variants or {})
    for name, value in fixed.items():
        if name not in spec.variants:
            raise ValueError(f"{spec.name} has no option {name!r}")
        if value not in spec.variants[name][0]:
            raise ValueError(f"--{name} is one of {', '.join(spec.variants[name][0])}")
    size = nodes if nodes is not None else nodes_for_seed(seed)
    rng = Random(f"{spec.name}/{seed}/{size}")
    tunings = [spec.tuning[name] for name in sorted(bugs) if name in spec.tuning]
    if spec.shape is not None:
        tunings.insert(0, spec.shape)
    options = spec.draw_options(rng)
    for tuning in tunings:
        if tuning.options is not None:
            options = tuning.options(options)
    for name, value in sorted(fixed.items()):
        options = spec.variants[name][1](options, value)
    options = spec.plant(options, bugs)
    groups = rng.choice(spec.group_choices)
    networks = [name for tuning in tunings for name in tuning.networks] or sorted(PRESETS)
    conditions = PRESETS[rng.choice(networks)]
    settings = []
    for _ in range(size):
        rate = 1.0 + rng.uniform(-0.1, 0.1) if mix.clock else 1.0
        offset = rng.uniform(0, 1000.0) if mix.clock else 0.0
        fsync = (0.2, 1.0) if rng.random() < 0.7 or not mix.disk else (2.0, 10.0)
        drawn = NodeSettings(clock_offset=offset, clock_rate=rate, fsync_ms=fsync,
                             lose_unsynced=mix.lose_unsynced)
        settings.append(drawn if spec.node_settings is None else spec.node_settings(rng, drawn))
    workload = WorkloadSettings(clients=rng.choice((3, 4, 5)), keys=rng.choice((3, 5, 8)))
    weights: dict[str, int] = dict(faults.DEFAULT_WEIGHTS)
    for tuning in tunings:
        workload = replace(workload, **tuning.workload)
        weights.update(tuning.weights)
    schedule = _draw_schedule(rng, size, groups, chaos_ms, mix, weights, spec.extra_faults)
    return RunPlan(
        protocol=spec.name, seed=seed, nodes=size, groups=groups, chaos_ms=chaos_ms,
        options=options, bugs=bugs, conditions=conditions, node_settings=tuple(settings),
        workload=workload, mix=mix, schedule=tuple(schedule),
        workload_seed=rng.getrandbits(64),
        start_gaps_ms=tuple(rng.uniform(0, 30.0) for _ in range(size)),
        variants=tuple(sorted(fixed.items())))


def _draw_schedule(rng: Random, size: int, groups: int, chaos_ms: float, mix: FaultMix,
                   weights: dict[str, int], extra: Mapping[str, ExtraFault]) -> list[Fault]:
    ids = [NodeId(i) for i in range(1, size + 1)]
    shared = {kind: weight for kind, weight in weights.items() if kind in faults.DEFAULT_WEIGHTS}
    schedule = faults.draw_schedule(rng, ids, groups, chaos_ms, mix, shared)
    # The protocol's own kinds, as a second stream of events over the same window.
    for name, fault in extra.items():
        weight = weights.get(name, fault.weight)
        family_on = getattr(mix, fault.kind.family)
        if weight and family_on:
            at = 0.0
            gap = mix.mean_gap_ms * sum(shared.values()) / weight
            while True:
                at += rng.expovariate(1.0 / gap)
                if at >= chaos_ms:
                    break
                schedule.append(fault.draw(round(at, 1), rng, ids, groups))
    schedule.sort(key=lambda fault: fault.at_ms)
    return _one_corrupt_node(schedule)


def _one_corrupt_node(schedule: list[Fault]) -> list[Fault]:
    """At most one node's disk rots in a run: a node that refuses to start stays down, and
    liveness after healing needs a majority."""
    corrupt: NodeId | None = None
    kept = []
    for fault in schedule:
        if fault.kind == "corrupt":
            if corrupt is None:
                corrupt = fault.nodes[0]
            fault = replace(fault, nodes=(corrupt,))
        kept.append(fault)
    return kept


def execute(spec: ProtocolSpec, plan: RunPlan, *, trace: bool = False,
            vclock_log: Callable[[str], object] | None = None) -> tuple[RunResult, World]:
    """Run `plan`; the world is returned closed, for its trace. With `vclock_log`, every
    message sent and received is written to it, with its vector clock, in ShiViz's format."""
    if spec.run_plan is not None:
        return spec.run_plan(plan, trace, vclock_log)
    voters = frozenset(NodeId(i) for i in range(1, plan.nodes + 1))
    world = World(
        seed=plan.seed, nodes=plan.nodes, groups=plan.groups,
        make_engine=lambda w: spec.make_engine(w, plan.options),
        make_machine=lambda node, group: KVStateMachine(),
        make_chain_master=(None if spec.chain_master is None
                           else functools.partial(spec.chain_master, voters)),
        timing=spec.timing(plan.options), settings=plan.node_settings,
        conditions=plan.conditions, trace=trace, replay_hint=plan.replay_command(),
        vclock_log=vclock_log)
    world.note(f"plan: seed {plan.seed}, {plan.nodes} nodes, {plan.groups} groups, "
               f"{len(plan.schedule)} faults, options {plan.options}")
    workload = spec.make_workload(world, Random(plan.workload_seed), plan.workload)
    verdict = "not checked"
    try:
        world.run(run_phases(world, workload, plan))
        result = workload.check()
        verdict = result.verdict.value
        if result.verdict is Verdict.NOT_LINEARIZABLE:
            world.fail(f"the clients' history is not linearizable: {_explain(result)}")
    except SimulationFailure:
        pass
    finally:
        world.close()
    fingerprint = zlib.crc32("\n".join(
        [str(world.network.messages_sent), str(world.failure), *workload.lines]).encode())
    return RunResult(
        seed=plan.seed, nodes=plan.nodes, groups=plan.groups, ok=world.failure is None,
        failure=world.failure, verdict=verdict, virtual_ms=world.now_ms,
        messages=world.network.messages_sent, operations=dict(workload.completed),
        detected_faults=tuple(world.detected_faults), faults=len(plan.schedule),
        fingerprint=fingerprint), world


async def run_phases(world: World, workload: Clients, plan: RunPlan) -> None:
    """Start the nodes, strike the schedule while the clients work, heal, converge."""
    for node, gap in zip(sorted(world.nodes), plan.start_gaps_ms, strict=True):
        world.start(node)
        await asyncio.sleep(gap / 1000.0)
    for fault in plan.schedule:
        world.loop.call_at(fault.at_ms / 1000.0, faults.apply, world, fault)
    await workload.run_clients(until=plan.chaos_ms / 1000.0)
    heal(world)
    problem = await workload.converge(CONVERGE_SECONDS)
    if problem is not None:
        world.fail(problem)


def heal(world: World) -> None:
    world.note("recovery: heal the network, fix disks and clocks, restart every node")
    world.faults_enabled = False
    world.heal()
    world.set_conditions(RELIABLE)
    for node_id, node in sorted(world.nodes.items()):
        node.disk.repair()
        if node.clock.rate != 1.0:
            world.set_clock_rate(node_id, 1.0)
        if not node.up and node.refused is None:
            world.start(node_id)


def _explain(result: Any) -> str:
    violation = result.violation
    if violation is None or violation.outcome is None:
        return result.reason or "no explanation"
    outcome = violation.outcome
    breaking = outcome.stuck[0]
    state = outcome.states[-1] if outcome.states else None
    return (f"key {violation.label}: process {breaking.process}'s {breaking.describe()} "
            f"cannot follow the {len(outcome.linearization)} operations that linearize "
            f"(state then {state!r})")


def run_seed(spec: ProtocolSpec, seed: int, nodes: int | None = None, *,
             bugs: frozenset[str] = frozenset(), mix: FaultMix = ALL_FAULTS,
             trace: bool = False, chaos_ms: float = CHAOS_MS,
             variants: Mapping[str, str] | None = None) -> tuple[RunResult, World]:
    plan = plan_run(spec, seed, nodes, bugs=bugs, mix=mix, chaos_ms=chaos_ms,
                    variants=variants)
    return execute(spec, plan, trace=trace)


@dataclass(slots=True)
class SweepReport:
    results: list[RunResult]

    @property
    def failures(self) -> list[RunResult]:
        return [result for result in self.results if not result.ok]

    @property
    def unknown(self) -> list[RunResult]:
        return [result for result in self.results if result.unknown]


def sweep(spec: ProtocolSpec, seeds: range, nodes: int | None = None, *,
          bugs: frozenset[str] = frozenset(), mix: FaultMix = ALL_FAULTS,
          stop_after_failures: int | None = None, chaos_ms: float = CHAOS_MS, jobs: int = 1,
          on_result: Callable[[RunResult], None] | None = None,
          variants: Mapping[str, str] | None = None) -> SweepReport:
    """Run every seed of `seeds` (in `jobs` processes), in seed order as far as results go:
    stopping after the first failures stops at the lowest failing seeds."""
    results = []
    failures = 0
    fixed = tuple(sorted((variants or {}).items()))
    for result in _results(spec, seeds, nodes, bugs, mix, chaos_ms, jobs, fixed):
        results.append(result)
        if on_result is not None:
            on_result(result)
        failures += not result.ok
        if stop_after_failures is not None and failures >= stop_after_failures:
            break
    return SweepReport(results)


def _results(spec: ProtocolSpec, seeds: range, nodes: int | None, bugs: frozenset[str],
             mix: FaultMix, chaos_ms: float, jobs: int, variants: tuple[tuple[str, str], ...]
             ) -> Iterator[RunResult]:
    run = functools.partial(_run_registered, spec.name, nodes, bugs, mix, chaos_ms, variants)
    if jobs <= 1 or len(seeds) <= 1:
        yield from map(run, seeds)
        return
    # Each seed is a run of its own, so processes share nothing; forked, they inherit the
    # registry (a spec holds functions, which do not travel by pickle).
    pool = concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("fork"))
    try:
        # A child must never finalize what it inherited: a gRPC channel or server that an
        # earlier caller dropped would, in the child, wait for threads that were not forked
        # with it, for ever. So the garbage is collected here first, and what is left is
        # frozen (never collected) while the workers fork, which `map` does at once.
        gc.collect()
        gc.freeze()
        try:
            results = pool.map(run, seeds,
                               chunksize=max(1, min(16, len(seeds) // (4 * jobs))))
        finally:
            gc.unfreeze()
        yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_registered(name: str, nodes: int | None, bugs: frozenset[str], mix: FaultMix,
                    chaos_ms: float, variants: tuple[tuple[str, str], ...], seed: int
                    ) -> RunResult:
    result, _ = run_seed(protocol(name), seed, nodes, bugs=bugs, mix=mix, chaos_ms=chaos_ms,
                         variants=dict(variants))
    return result
