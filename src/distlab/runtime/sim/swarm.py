"""Random fault schedules, one per seed, with every invariant checked at every step.

A run has two phases. During the chaos phase clients propose and read while the schedule
crashes and restarts nodes, partitions the network (symmetric, asymmetric, or around the
leader), and switches the network between reliable, lossy, duplicating and long-reordering
modes. Then everything heals and the run must make progress: a new command commits on every
node within the 6.5840 tester's 10 s, and every command a client saw committed is still in
the final log. The invariant checker fails a run the moment a safety property breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.raft import Raft
from distlab.runtime.sim.lab import LabCluster
from distlab.runtime.sim.network import PRESETS, RELIABLE
from distlab.runtime.sim.world import SimOptions, SimulationFailure

CLUSTER_SIZES = (3, 5, 7)
CHAOS_MS = 3_000


@dataclass(frozen=True, slots=True)
class RunResult:
    seed: int
    nodes: int
    ok: bool
    failure: str | None
    virtual_ms: int
    events: int
    commands_committed: int

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "nodes": self.nodes,
            "ok": self.ok,
            "failure": self.failure,
            "virtual_ms": self.virtual_ms,
            "events": self.events,
            "commands_committed": self.commands_committed,
        }


def nodes_for_seed(seed: int) -> int:
    return CLUSTER_SIZES[seed % len(CLUSTER_SIZES)]


@dataclass(slots=True)
class _Acknowledged:
    client: str
    command: bytes
    index: int
    term: int


class _Schedule:
    """Drives one run: clients and faults drawn from the seed's own generator."""

    def __init__(self, cluster: LabCluster, rng: Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.ids = cluster.ids()
        self.next_command = 0
        self.believed_leader: dict[str, NodeId] = {}
        self.pending: list[_Acknowledged] = []
        self.acknowledged: list[_Acknowledged] = []
        self.reads = 0
        self.actions: list[tuple[int, Callable[[], None]]] = [
            (40, self.propose),
            (8, self.read),
            (6, self.crash),
            (6, self.crash_leader),
            (8, self.restart),
            (5, self.disconnect),
            (5, self.connect),
            (5, self.partition),
            (4, self.cut_links),
            (4, self.isolate_leader),
            (6, self.heal),
            (5, self.change_network),
            (4, self.transfer_leadership),
        ]
        self.total_weight = sum(weight for weight, _ in self.actions)

    def step(self) -> None:
        pick = self.rng.randrange(self.total_weight)
        for weight, action in self.actions:
            if pick < weight:
                action()
                return
            pick -= weight

    # --- clients ---

    def propose(self) -> None:
        for _ in range(self.rng.randrange(1, 5)):
            self.propose_one()

    def propose_one(self) -> None:
        client = f"c{self.rng.randrange(3)}"
        target = self.believed_leader.get(client) or self.rng.choice(self.ids)
        self.next_command += 1
        value = f"{client}-{self.next_command}".encode()
        proposal = self.cluster.propose(target, value, client=client)
        if proposal is None:
            raft = self.cluster.nodes[target].raft
            hint = raft.leader_id if raft is not None else 0
            self.believed_leader[client] = NodeId(hint) if hint else self.rng.choice(self.ids)
            return
        self.believed_leader[client] = target
        self.pending.append(_Acknowledged(client, value, proposal.index, proposal.term))

    def collect_acknowledgements(self) -> None:
        """A client learns its command committed when the node it asked has applied it."""
        still_pending = []
        for record in self.pending:
            for node in self.cluster.nodes.values():
                if node.state_machine.commands.get(record.index) == record.command:
                    self.acknowledged.append(record)
                    self.cluster.note(
                        f"{record.client} sees {record.command.decode()} committed "
                        f"at index={record.index}"
                    )
                    break
            else:
                still_pending.append(record)
        self.pending = still_pending

    def read(self) -> None:
        self.reads += 1
        target = self.rng.choice(self.ids)
        self.cluster.read(target, f"r{self.reads}".encode())

    # --- faults ---

    def crash(self) -> None:
        live = self.cluster.live_nodes()
        if live:
            self.cluster.crash(self.rng.choice(live))

    def crash_leader(self) -> None:
        """Crashing leaders in quick succession builds logs like the paper's Figure 8."""
        leaders = self.cluster.leaders()
        if leaders:
            self.cluster.crash(leaders[-1])

    def restart(self) -> None:
        down = [node for node in self.ids if not self.cluster.nodes[node].up]
        if down:
            self.cluster.restart(self.rng.choice(down))

    def disconnect(self) -> None:
        self.cluster.disconnect(self.rng.choice(self.ids))

    def connect(self) -> None:
        self.cluster.connect(self.rng.choice(self.ids))

    def partition(self) -> None:
        shuffled = list(self.ids)
        self.rng.shuffle(shuffled)
        cut = self.rng.randrange(1, len(shuffled))
        self.cluster.partition([sorted(shuffled[:cut]), sorted(shuffled[cut:])])

    def cut_links(self) -> None:
        for _ in range(self.rng.randrange(1, len(self.ids))):
            source, destination = self.rng.sample(self.ids, 2)
            self.cluster.block(source, destination)

    def isolate_leader(self) -> None:
        leaders = self.cluster.leaders()
        if leaders:
            leader = leaders[0]
            self.cluster.partition([[leader], [n for n in self.ids if n != leader]])

    def heal(self) -> None:
        self.cluster.heal()

    def change_network(self) -> None:
        names = sorted(PRESETS)
        self.cluster.set_conditions(PRESETS[self.rng.choice(names)])

    def transfer_leadership(self) -> None:
        leaders = self.cluster.leaders()
        if leaders:
            raft = self.cluster.raft(leaders[0])
            target = self.rng.choice(self.ids)
            if raft.transfer_leadership(target):
                self.cluster.note(f"n{leaders[0]} transfers leadership to n{target}")


def random_options(rng: Random) -> SimOptions:
    return SimOptions(
        max_inflight_appends=rng.choice((1, 4, 8)),
        max_entries_per_message=rng.choice((1, 8, 64)),
        pre_vote=rng.random() < 0.8,
        check_quorum=rng.random() < 0.8,
        snapshot_every=rng.choice((0, 0, 5, 13)),
    )


def run_seed(
    seed: int,
    nodes: int | None = None,
    *,
    trace: bool = False,
    raft_class: type[Raft] = Raft,
    chaos_ms: int = CHAOS_MS,
) -> tuple[RunResult, LabCluster | None]:
    """Runs one seed; the cluster is returned for its trace (None if it failed to start)."""
    size = nodes if nodes is not None else nodes_for_seed(seed)
    rng = Random(seed * 1_000_003 + size)
    options = random_options(rng)
    cluster: LabCluster | None = None
    schedule: _Schedule | None = None
    try:
        cluster = LabCluster(
            seed,
            size,
            options=options,
            trace=trace,
            raft_class=raft_class,
            replay_hint=f"distlab sim raft --seed {seed} --nodes {size} --chaos-ms {chaos_ms}",
        )
        cluster.set_conditions(PRESETS[rng.choice(sorted(PRESETS))])
        schedule = _Schedule(cluster, rng)
        while cluster.now < chaos_ms:
            cluster.run_for(rng.randrange(10, 80))
            schedule.collect_acknowledgements()
            schedule.step()
        _recover(cluster, schedule)
    except SimulationFailure as failure:
        return _result(seed, size, cluster, schedule, str(failure)), cluster
    return _result(seed, size, cluster, schedule, None), cluster


def _recover(cluster: LabCluster, schedule: _Schedule) -> None:
    cluster.note("recovery: heal, reliable network, restart every node")
    cluster.heal()
    cluster.set_conditions(RELIABLE)
    for node_id in cluster.ids():
        if not cluster.nodes[node_id].up:
            cluster.restart(node_id)
    final = b"final"
    index = cluster.one(final, cluster.n, retry=True)
    schedule.collect_acknowledgements()
    for record in schedule.acknowledged:
        expect_index = record.index
        if expect_index > index:
            cluster.fail(f"{record.client}'s {record.command!r} acknowledged past the final entry")
        for node in cluster.nodes.values():
            found = node.state_machine.commands.get(expect_index)
            cluster.expect(
                found == record.command,
                f"{record.client} saw {record.command!r} committed at {expect_index}, "
                f"but n{node.node_id} has {found!r} there",
            )


def _result(
    seed: int,
    size: int,
    cluster: LabCluster | None,
    schedule: _Schedule | None,
    failure: str | None,
) -> RunResult:
    return RunResult(
        seed=seed,
        nodes=size,
        ok=failure is None,
        failure=failure,
        virtual_ms=cluster.now if cluster else 0,
        events=cluster.events_processed if cluster else 0,
        commands_committed=len(schedule.acknowledged) if schedule else 0,
    )


def sweep(
    seeds: range,
    nodes: int | None = None,
    *,
    raft_class: type[Raft] = Raft,
    chaos_ms: int = CHAOS_MS,
    stop_after_failures: int | None = None,
) -> list[RunResult]:
    """Runs every seed in `seeds`; returns all results (failures have `ok` False)."""
    results = []
    failures = 0
    for seed in seeds:
        result, _ = run_seed(seed, nodes, raft_class=raft_class, chaos_ms=chaos_ms)
        results.append(result)
        if not result.ok:
            failures += 1
            if stop_after_failures is not None and failures >= stop_after_failures:
                break
    return results
