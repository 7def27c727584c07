"""When faults happen in a test run, and which links a network partition cuts.

A run alternates healthy and faulty intervals of equal length, starting healthy so the
history shows the cluster working before anything breaks:

    0        S        2S       3S       4S       5S ...   time limit
    | healthy | fault 1 | healthy | fault 2 | healthy | ...

Faults are taken from the requested list in turn, so every kind gets a window as soon as
the time limit allows. Healing takes time (a killed node must restart), so at run time each
healthy stretch is measured from when the heal finished, not from when it was due: the
cluster always gets its full healthy interval, and `FaultSchedule` hands out the windows
one at a time. `plan_schedule` is the same schedule with heals of a given length (instant
by default), which is what a run prints at its start; `fit_warning` says when a time limit
leaves a named fault without a window.

Which node a fault hits, and the shape of a partition, are drawn at run time from a
seeded `random.Random`, so a seed replays the same choices.

Partitions are sets of cut links. A node told to drop traffic to and from a peer cuts that
link in both directions, so a shape is a graph of who can still talk to whom.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from random import Random

from distlab.core.ids import NodeId
from distlab.core.quorum import majority

NO_FAULT = "none"
KILL = "kill"
PAUSE = "pause"
PARTITION = "partition"
TXN_CRASH = "txn-crash"
TXN_PARTITION = "txn-partition"
# The transaction fault a `txn-partition` arms a node with.
TXN_PARTITION_FAULT = "participant-isolate-after-yes"

PARTITION_HALVES = "halves"
PARTITION_ISOLATE_ONE = "isolate-one"
PARTITION_MAJORITIES_RING = "majorities-ring"
PARTITION_ISOLATE_LEADER = "isolate-leader"
PARTITION_SHAPES = (PARTITION_HALVES, PARTITION_ISOLATE_ONE, PARTITION_MAJORITIES_RING)

# Every fault a run may ask for. `kill` and `pause` hit a random node, their `-leader`
# forms the node leading when the fault starts; `partition` draws one of the three shapes,
# `partition-<shape>` always uses that shape.
FAULTS: dict[str, str] = {
    KILL: "SIGKILL a random node; restart it at the heal",
    "kill-leader": "SIGKILL the leader; restart it at the heal",
    PAUSE: "SIGSTOP a random node; SIGCONT at the heal",
    "pause-leader": "SIGSTOP the leader; SIGCONT at the heal",
    PARTITION: "cut the network: halves, isolate-one or majorities-ring, drawn at random",
    f"partition-{PARTITION_HALVES}": "cut the nodes into two halves",
    f"partition-{PARTITION_ISOLATE_ONE}": "cut one random node off from the others",
    f"partition-{PARTITION_MAJORITIES_RING}": "every node sees a majority, no two the same",
    f"partition-{PARTITION_ISOLATE_LEADER}": "cut the leader off from the others",
    TXN_CRASH: "arm a random node to crash at a dangerous moment of a transaction, drawn "
               "among the txn-crash-<moment> below; restart it at the heal",
}

# The moments `txn-crash` draws from, each the transaction fault a node is armed with through
# Admin.SetFault (the names the node's transaction driver knows).
TXN_CRASH_MOMENTS: dict[str, str] = {
    "prepare-some": "coordinator-crash-after-prepare-some",
    "commit-logged": "coordinator-crash-after-commit-logged",
    "commit-some": "coordinator-crash-after-commit-some",
    "participant-yes": "participant-crash-after-yes",
    "participant-ack": "participant-crash-after-ack",
}
_TXN_CRASH_TEXT = {
    "prepare-some": "a coordinator crashes after sending PREPARE to some participants",
    "commit-logged": "a coordinator crashes with COMMIT on its disk, before sending it",
    "commit-some": "a coordinator crashes after sending COMMIT to some participants",
    "participant-yes": "a participant crashes after voting yes",
    "participant-ack": "a participant crashes after acknowledging the decision",
}
FAULTS.update({f"{TXN_CRASH}-{moment}": f"arm a random node: {text}; restart it at the heal"
               for moment, text in _TXN_CRASH_TEXT.items()})
FAULTS[TXN_PARTITION] = ("arm a random node to cut itself off from the others right after it "
                         "next votes yes, leaving a transaction's participants on two sides "
                         "of a partition; reconnect it at the heal")


# The plan counts heals as instant, but a killed node takes a moment to restart and serve,
# and the next healthy interval only starts then; allowing this much per fault keeps
# every planned window inside the time limit.
HEAL_ALLOWANCE_SECONDS = 2.0


class ScheduleError(ValueError):
    """A nemesis request that cannot be scheduled; the message says why."""


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """One fault window, in seconds from the start of the run."""

    start: float
    end: float
    fault: str


def parse_nemesis(text: str) -> tuple[str, ...]:
    """`kill,pause,partition` -> the faults in that order; `none` -> no faults."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise ScheduleError(f"empty entry in --nemesis {text!r}")
    if NO_FAULT in names:
        if len(names) > 1:
            raise ScheduleError("--nemesis none cannot be combined with other faults")
        return ()
    for name in names:
        if name not in FAULTS:
            raise ScheduleError(f"unknown fault {name!r} (expected {NO_FAULT} or "
                                f"{', '.join(FAULTS)})")
    if len(set(names)) != len(names):
        raise ScheduleError(f"a fault is listed twice in --nemesis {text!r}")
    return tuple(names)


class FaultSchedule:
    """Hands out fault windows one at a time, each after a full healthy interval."""

    def __init__(self, faults: Sequence[str], interval: float, time_limit: float) -> None:
        if interval <= 0 or time_limit <= 0:
            raise ScheduleError("the interval and the time limit must be positive")
        self.faults = tuple(faults)
        self.interval = interval
        self.time_limit = time_limit
        self._taken = 0

    def next_fault(self, healthy_since: float) -> PlannedFault | None:
        """The next window, given that the cluster has been healthy since `healthy_since`
        (seconds from the start of the run); None when no window fits before the time
        limit."""
        if not self.faults:
            return None
        start = healthy_since + self.interval
        end = start + self.interval
        if end > self.time_limit + 1e-9:
            return None
        fault = self.faults[self._taken % len(self.faults)]
        self._taken += 1
        return PlannedFault(start, end, fault)


def plan_schedule(faults: Sequence[str], interval: float, time_limit: float,
                  heal_seconds: float = 0.0) -> tuple[PlannedFault, ...]:
    """Every window a run gets when each heal takes `heal_seconds` (instant by default):
    fault windows of `interval` seconds, each followed by the heal and as long a healthy
    interval, the first after one healthy interval; a window that would end after
    `time_limit` is left out."""
    schedule = FaultSchedule(faults, interval, time_limit)
    planned: list[PlannedFault] = []
    healthy_since = 0.0
    while (window := schedule.next_fault(healthy_since)) is not None:
        planned.append(window)
        healthy_since = window.end + heal_seconds
    return tuple(planned)


def left_out(faults: Sequence[str], ran: Iterable[str]) -> tuple[str, ...]:
    """The faults of `faults` not among those that `ran` (or are planned), in order."""
    running = set(ran)
    return tuple(fault for fault in faults if fault not in running)


def time_limit_for_each(faults: Sequence[str], interval: float) -> float:
    """The shortest time limit that runs every fault once: a healthy interval and a window
    per fault, and the heal allowance for every fault but the last, so that slow heals push
    no window out (the last heal may finish after the time limit)."""
    return len(faults) * 2 * interval + max(len(faults) - 1, 0) * HEAL_ALLOWANCE_SECONDS


def describe_plan(planned: Sequence[PlannedFault]) -> str:
    """`10-20 s kill, 30-40 s pause` (or `none`)."""
    return ", ".join(f"{window.start:g}-{window.end:g} s {window.fault}"
                     for window in planned) or "none"


def fit_warning(faults: Sequence[str], interval: float, time_limit: float) -> str | None:
    """Why some of `faults` get no window within `time_limit` (or none once heals take
    their usual time), and the settings that run each once; None when each fits."""
    instant = plan_schedule(faults, interval, time_limit)
    slow = plan_schedule(faults, interval, time_limit, HEAL_ALLOWANCE_SECONDS)
    missing = left_out(faults, (window.fault for window in instant))
    at_risk = left_out(faults, (window.fault for window in slow))
    if not at_risk:
        return None
    needed = time_limit_for_each(faults, interval)
    # The longest interval whose plan, heal allowances included, fits the time limit.
    heals = (len(faults) - 1) * HEAL_ALLOWANCE_SECONDS
    shorter = math.floor((time_limit - heals) / (2 * len(faults)) * 10) / 10
    advice = f"--time-limit {math.ceil(needed):d}"
    if shorter > 0:
        advice += f" or --nemesis-interval {shorter:g}"
    outcome = (f"leaves no window for {', '.join(missing)}" if missing else
               f"leaves no window for {', '.join(at_risk)} once heals take their time")
    return (f"--time-limit {time_limit:g} {outcome}: each fault needs a healthy "
            f"{interval:g} s and its {interval:g} s window, and a heal takes up "
            f"to {HEAL_ALLOWANCE_SECONDS:g} s, so {_count(faults)} {needed:g} s; "
            f"try {advice}")


def _count(faults: Sequence[str]) -> str:
    return f"{len(faults)} faults need" if len(faults) != 1 else "one fault needs"


def is_kill(fault: str) -> bool:
    return fault.split("-", 1)[0] == KILL


def is_pause(fault: str) -> bool:
    return fault.split("-", 1)[0] == PAUSE


def is_partition(fault: str) -> bool:
    return fault.split("-", 1)[0] == PARTITION


def is_txn_crash(fault: str) -> bool:
    return fault == TXN_CRASH or fault.startswith(f"{TXN_CRASH}-")


def is_txn_partition(fault: str) -> bool:
    return fault == TXN_PARTITION


def strikes_transactions(fault: str) -> bool:
    """A fault armed inside the transaction protocol (for the bank workloads only)."""
    return is_txn_crash(fault) or is_txn_partition(fault)


def choose_txn_crash(fault: str, rng: Random) -> str:
    """The transaction fault to arm for a `txn-crash` (drawn) or `txn-crash-<moment>`."""
    if fault == TXN_CRASH:
        return TXN_CRASH_MOMENTS[rng.choice(sorted(TXN_CRASH_MOMENTS))]
    moment = fault.removeprefix(f"{TXN_CRASH}-")
    if moment not in TXN_CRASH_MOMENTS:
        raise ValueError(f"unknown transaction crash {fault!r}")
    return TXN_CRASH_MOMENTS[moment]


def targets_leader(fault: str) -> bool:
    return fault.endswith("-leader")


@dataclass(frozen=True, slots=True)
class Partition:
    """A network partition: which links are cut, and how to say it to a person."""

    shape: str
    description: str
    cuts: frozenset[tuple[NodeId, NodeId]]

    def isolation(self, nodes: Iterable[NodeId]) -> dict[NodeId, frozenset[NodeId]]:
        """For every node, the peers it must drop traffic to and from."""
        isolated: dict[NodeId, set[NodeId]] = {node: set() for node in nodes}
        for left, right in self.cuts:
            isolated[left].add(right)
            isolated[right].add(left)
        return {node: frozenset(peers) for node, peers in isolated.items()}

    def connected(self, left: NodeId, right: NodeId) -> bool:
        return _link(left, right) not in self.cuts


def _link(left: NodeId, right: NodeId) -> tuple[NodeId, NodeId]:
    return (left, right) if left < right else (right, left)


def _cut_between(groups: Sequence[Sequence[NodeId]]) -> frozenset[tuple[NodeId, NodeId]]:
    cuts: set[tuple[NodeId, NodeId]] = set()
    for one, other in itertools.combinations(groups, 2):
        cuts.update(_link(left, right) for left in one for right in other)
    return frozenset(cuts)


def _groups_text(groups: Sequence[Sequence[NodeId]]) -> str:
    return " | ".join(" ".join(str(node) for node in sorted(group)) for group in groups)


def halves(nodes: Sequence[NodeId], rng: Random) -> Partition:
    """Two groups of sizes floor(n/2) and ceil(n/2), members drawn at random."""
    _require_nodes(nodes, 2)
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    small = sorted(shuffled[:len(shuffled) // 2])
    large = sorted(shuffled[len(shuffled) // 2:])
    return Partition(PARTITION_HALVES, _groups_text([small, large]),
                     _cut_between([small, large]))


def isolate(nodes: Sequence[NodeId], target: NodeId, shape: str = PARTITION_ISOLATE_ONE
            ) -> Partition:
    """`target` alone, the others together."""
    _require_nodes(nodes, 2)
    if target not in nodes:
        raise ValueError(f"node {target} is not one of {sorted(nodes)}")
    rest = sorted(node for node in nodes if node != target)
    return Partition(shape, _groups_text([[target], rest]), _cut_between([[target], rest]))


def majorities_ring(nodes: Sequence[NodeId], rng: Random) -> Partition:
    """Nodes in a random ring, each linked only to its nearest neighbours, enough of them
    that it sees a majority (itself included); so every node sees a majority and no two
    see the same one, and two leaders may each believe they have quorum's ear.

    With three nodes a ring links everyone, so one link is cut instead: two nodes see
    different majorities through the third, which bridges them.
    """
    _require_nodes(nodes, 3)
    ring = list(nodes)
    rng.shuffle(ring)
    size = len(ring)
    others_needed = majority(size) - 1
    reach = (others_needed + 1) // 2  # neighbours kept on each side
    cuts: set[tuple[NodeId, NodeId]] = set()
    for i, j in itertools.combinations(range(size), 2):
        distance = min(j - i, size - (j - i))
        if distance > reach:
            cuts.add(_link(ring[i], ring[j]))
    if not cuts:
        cuts.add(_link(ring[0], ring[-1]))
        description = f"bridge: {ring[0]} and {ring[-1]} meet only through " + \
            " ".join(str(node) for node in ring[1:-1])
    else:
        description = "ring " + "-".join(str(node) for node in ring) + \
            f" (each sees {2 * reach + 1})"
    return Partition(PARTITION_MAJORITIES_RING, description, frozenset(cuts))


def choose_partition(fault: str, nodes: Sequence[NodeId], rng: Random,
                     leader: NodeId | None) -> Partition:
    """The partition for a `partition` or `partition-<shape>` fault.

    `isolate-leader` falls back to a random node when no leader is known.
    """
    shape = fault.partition("-")[2] or rng.choice(PARTITION_SHAPES)
    if shape == PARTITION_HALVES:
        return halves(nodes, rng)
    if shape == PARTITION_ISOLATE_ONE:
        return isolate(nodes, rng.choice(list(nodes)))
    if shape == PARTITION_MAJORITIES_RING:
        return majorities_ring(nodes, rng)
    if shape == PARTITION_ISOLATE_LEADER:
        target = leader if leader is not None and leader in nodes else rng.choice(list(nodes))
        return isolate(nodes, target, PARTITION_ISOLATE_LEADER)
    raise ValueError(f"unknown partition shape {shape!r}")


def _require_nodes(nodes: Sequence[NodeId], least: int) -> None:
    if len(nodes) < least:
        raise ValueError(f"this partition needs at least {least} nodes, not {len(nodes)}")
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"nodes repeat in {list(nodes)}")
