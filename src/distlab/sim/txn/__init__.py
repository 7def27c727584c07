"""Two- and three-phase commit in the simulator: bank clients over nodes that are each one
participant, or over consensus groups that are each one participant, with atomicity, vote,
lock and bank invariants checked throughout.

`distlab sim txn --protocol 2pc|3pc --participants nodes|groups --faults all|crash|partition`
selects a variant; each is a registered protocol of its own (named by its options, which is
also how a failure's replay line reads), drawn from the shared fault schedule with the
weights its mode gives.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from random import Random
from typing import Any, TypeVar

from distlab.protocols.txn import BUG_CATALOGUE, Protocol
from distlab.runtime.host.driver import Timing
from distlab.sim import faults, harness
from distlab.sim.harness import RunPlan, RunResult, Tuning
from distlab.sim.paxos import draw_options as draw_paxos_options
from distlab.sim.raft import draw_options as draw_raft_options
from distlab.sim.txn.groups import (
    CONSENSUS_TICK_SECONDS,
    ENGINES,
    GroupBankWorkload,
    GroupTxnOptions,
    GroupTxnWorld,
    spread_accounts,
)
from distlab.sim.txn.invariants import TxnInvariants
from distlab.sim.txn.workload import BankClients, BankSettings, BankWorkload
from distlab.sim.txn.world import TICK_SECONDS, TxnWorld
from distlab.sim.world import SimulationFailure, World

FAULT_MODES = ("all", "crash", "partition")
PARTICIPANTS = ("nodes", "groups")
# Fault kinds aimed at a consensus leader find none here.
_NO_LEADERS = {"crash-leader": 0, "crash-new-leader": 0, "isolate-leader": 0}
_ALL_OFF = {kind: 0 for kind in faults.DEFAULT_WEIGHTS}
SHAPES: Mapping[str, Tuning] = {
    # Everything the simulator can do, except a disk that rots (a node that then never
    # starts again leaves its transactions in doubt for ever, which proves nothing).
    "all": Tuning(weights={**_NO_LEADERS, "corrupt": 0, "crash": 8, "partition": 8}),
    # Fail-stop processes on a network that loses nothing: the setting 3PC is made for.
    "crash": Tuning(weights={**_ALL_OFF, "crash": 8, "restart": 10, "power-loss": 3,
                             "power-loss-in-fsync": 2},
                    networks=("reliable", "reordering", "duplicating")),
    # Partitions alone, on a network that loses nothing.
    "partition": Tuning(weights={**_ALL_OFF, "partition": 10, "cut-links": 4,
                                 "disconnect": 4, "connect": 4, "heal": 6},
                        networks=("reliable", "reordering")),
}


# Over groups no single crash blocks anything and a node that never starts again is one
# replica less: every fault kind (the leader-aimed ones move a group's participant).
GROUP_SHAPES: Mapping[str, Tuning] = {
    "all": Tuning(),
    "crash": Tuning(weights={**_ALL_OFF, "crash": 6, "crash-leader": 8, "crash-new-leader": 4,
                             "restart": 10, "power-loss": 3, "power-loss-in-fsync": 2},
                    networks=("reliable", "reordering", "duplicating")),
    "partition": Tuning(weights={**_ALL_OFF, "partition": 10, "isolate-leader": 8,
                                 "cut-links": 4, "disconnect": 4, "connect": 4, "heal": 6},
                        networks=("reliable", "reordering")),
}


# How a sweep over groups hunts the bugs it takes long to show: a participant that aborts
# alone must hear nothing for the in-doubt timeout while its group keeps its leader, so the
# links between groups' leaders are cut rather than the groups broken up.
GROUP_TUNING: Mapping[str, Tuning] = {
    "unilateral-abort-after-yes": Tuning(
        weights={"cut-links": 12, "partition": 8, "isolate-leader": 4, "crash": 0,
                 "crash-leader": 0, "crash-new-leader": 0, "power-loss": 0,
                 "power-loss-in-fsync": 0, "corrupt": 0, "fail-fsync": 0}),
}


@dataclass(frozen=True, slots=True)
class TxnOptions:
    protocol: Protocol
    faults: str
    bank: BankSettings
    planted_bugs: frozenset[str] = frozenset()


def spec_name(protocol: Protocol, fault_mode: str, participants: str = "nodes") -> str:
    """The registry name of a variant: the command line that selects it."""
    if participants == "groups":
        return f"txn --protocol {protocol.value} --participants groups --faults {fault_mode}"
    if protocol is Protocol.TWO_PHASE and fault_mode == "all":
        return "txn"
    return f"txn --protocol {protocol.value} --faults {fault_mode}"


def variant(protocol: Protocol, fault_mode: str, participants: str = "nodes"
            ) -> harness.ProtocolSpec:
    return harness.protocol(spec_name(protocol, fault_mode, participants))


def _draw_bank(rng: Random) -> BankSettings:
    return BankSettings(clients=rng.choice((3, 4, 5)), accounts=rng.choice((3, 4, 6)),
                        reads=rng.choice((0.2, 0.3, 0.5)))


def _spec(protocol: Protocol, fault_mode: str) -> harness.ProtocolSpec:
    def draw_options(rng: Random) -> TxnOptions:
        return TxnOptions(protocol, fault_mode, _draw_bank(rng))

    def plant(options: TxnOptions, bugs: frozenset[str]) -> TxnOptions:
        return replace(options, planted_bugs=bugs) if bugs else options

    def run_plan(plan: RunPlan, trace: bool, vclock_log: Callable[[str], object] | None
                 ) -> tuple[RunResult, World]:
        return execute(plan, trace, vclock_log)

    return harness.ProtocolSpec(
        name=spec_name(protocol, fault_mode),
        summary=f"{protocol.value} over nodes, bank clients, faults: {fault_mode}",
        draw_options=draw_options, plant=plant,
        make_engine=_unused_engine, timing=lambda options: Timing(tick_seconds=TICK_SECONDS),
        bugs=BUG_CATALOGUE, shape=SHAPES[fault_mode], run_plan=run_plan,
        listed=protocol is Protocol.TWO_PHASE and fault_mode == "all")


def _unused_engine(world: World, options: Any) -> Any:
    raise AssertionError("transaction runs build their own world")


def execute(plan: RunPlan, trace: bool = False,
            vclock_log: Callable[[str], object] | None = None) -> tuple[RunResult, TxnWorld]:
    options: TxnOptions = plan.options
    world = TxnWorld(
        seed=plan.seed, nodes=plan.nodes, settings=plan.node_settings,
        conditions=plan.conditions, initial_data=BankWorkload.initial_data(options.bank),
        bugs=options.planted_bugs, trace=trace, replay_hint=plan.replay_command(),
        vclock_log=vclock_log)
    world.note(f"plan: seed {plan.seed}, {plan.nodes} nodes, {len(plan.schedule)} faults, "
               f"options {options}")
    workload = BankWorkload(world, Random(plan.workload_seed), options.bank, options.protocol)
    return _run_phases(plan, world, workload, options.protocol, groups=1)



WorldT = TypeVar("WorldT", TxnWorld, GroupTxnWorld)


def _run_phases(plan: RunPlan, world: WorldT, workload: BankClients, protocol: Protocol, *,
                groups: int) -> tuple[RunResult, WorldT]:
    """Run the plan's phases on `world` (a failure stops it where it is), close it, and
    judge the run."""
    try:
        world.run(harness.run_phases(world, workload, plan))
    except SimulationFailure:
        pass
    finally:
        world.close()
    return _result(plan, world, world.txn_engine.invariants, workload, protocol,
                   groups=groups), world

def _result(plan: RunPlan, world: World, invariants: TxnInvariants, workload: BankClients,
            protocol: Protocol, groups: int) -> RunResult:
    in_doubt = (f"{len(invariants.blocked)} blocked (in doubt, asking the coordinator)"
                if protocol is Protocol.TWO_PHASE
                else f"{len(invariants.terminated)} terminated by participants")
    verdict = (f"bank and atomicity hold: {len(invariants.committed)} committed, "
               f"{len(invariants.aborted)} aborted, {in_doubt}, "
               f"{workload.blocked_at_heal} in doubt at healing")
    fingerprint = zlib.crc32("\n".join(
        [str(world.network.messages_sent), str(world.failure), *workload.lines]).encode())
    return RunResult(
        seed=plan.seed, nodes=plan.nodes, groups=groups, ok=world.failure is None,
        failure=world.failure, verdict=verdict if world.failure is None else "failed",
        virtual_ms=world.now_ms, messages=world.network.messages_sent,
        operations=dict(workload.completed), detected_faults=tuple(world.detected_faults),
        faults=len(plan.schedule), fingerprint=fingerprint)


def _group_spec(protocol: Protocol, fault_mode: str) -> harness.ProtocolSpec:
    def draw_options(rng: Random) -> GroupTxnOptions:
        # Both engines' options, so that fixing the engine (`--engine`) keeps drawn ones.
        return GroupTxnOptions(protocol, fault_mode, _draw_bank(rng),
                               engine=rng.choice(("raft", "raft", "paxos")),
                               raft=draw_raft_options(rng), paxos=draw_paxos_options(rng))

    def plant(options: GroupTxnOptions, bugs: frozenset[str]) -> GroupTxnOptions:
        return replace(options, planted_bugs=bugs) if bugs else options

    def engine(options: GroupTxnOptions, value: str) -> GroupTxnOptions:
        return replace(options, engine=value)

    def run_plan(plan: RunPlan, trace: bool, vclock_log: Callable[[str], object] | None
                 ) -> tuple[RunResult, World]:
        return execute_groups(plan, trace, vclock_log)

    return harness.ProtocolSpec(
        name=spec_name(protocol, fault_mode, "groups"),
        summary=f"{protocol.value} over consensus groups, bank clients, faults: {fault_mode}",
        draw_options=draw_options, plant=plant, make_engine=_unused_engine,
        timing=lambda options: Timing(tick_seconds=CONSENSUS_TICK_SECONDS),
        bugs=BUG_CATALOGUE, shape=GROUP_SHAPES[fault_mode], tuning=GROUP_TUNING,
        run_plan=run_plan, listed=False, group_choices=(1, 2, 3, 3),
        variants={"engine": (ENGINES, engine)})


def execute_groups(plan: RunPlan, trace: bool = False,
                   vclock_log: Callable[[str], object] | None = None,
                   workload_class: type[GroupBankWorkload] = GroupBankWorkload
                   ) -> tuple[RunResult, GroupTxnWorld]:
    """Run `plan` over groups with the bank's clients (`workload_class`'s)."""
    options: GroupTxnOptions = plan.options
    accounts = spread_accounts(options.bank.accounts, plan.groups)
    world = GroupTxnWorld(
        seed=plan.seed, nodes=plan.nodes, groups=plan.groups, options=options,
        settings=plan.node_settings, conditions=plan.conditions,
        initial_data=BankWorkload.initial_data(options.bank, accounts), trace=trace,
        replay_hint=plan.replay_command(), vclock_log=vclock_log)
    world.note(f"plan: seed {plan.seed}, {plan.nodes} nodes, {plan.groups} groups, "
               f"{len(plan.schedule)} faults, options {options}")
    workload = workload_class(world, Random(plan.workload_seed), options.bank,
                              options.protocol, accounts)
    return _run_phases(plan, world, workload, options.protocol, groups=plan.groups)


for _protocol in Protocol:
    for _mode in FAULT_MODES:
        harness.register(_spec(_protocol, _mode))
        harness.register(_group_spec(_protocol, _mode))
