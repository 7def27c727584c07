"""Fault schedules: what goes wrong, when, drawn from a seed and applied to a world.

A schedule is a plain list of `Fault` events, each at a virtual time, so that it can be
printed, replayed and shrunk (drop events, keep the seed) independently of the rest of the
run. Events that name "the leader" resolve it when they fire. Three families:

- network: crashes and restarts, disconnections, partitions (symmetric, one-way, around a
  leader), healing, and the network's mode (reliable, lossy, duplicating, reordering);
- disk: power losses (unsynced writes lost, the last record possibly torn), a failing fsync,
  a record corrupted at rest (found at the next start), slow and fast disks;
- clock: a node's clock running fast or slow, and jumping forward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from random import Random

from distlab.core.ids import NodeId
from distlab.sim.network import PRESETS
from distlab.sim.world import World


@dataclass(frozen=True, slots=True)
class Fault:
    at_ms: float
    kind: str
    nodes: tuple[NodeId, ...] = ()
    # partitions: the side each node is on; other kinds: their numeric arguments
    values: tuple[float, ...] = ()
    name: str = ""

    def describe(self) -> str:
        return f"{self.at_ms:9.1f} ms  {FAULT_KINDS[self.kind].describe(self)}"


@dataclass(frozen=True, slots=True)
class FaultKind:
    family: str
    describe: Callable[[Fault], str]
    apply: Callable[[World, Fault], None]


def _names(nodes: Sequence[NodeId]) -> str:
    return ",".join(f"n{node}" for node in nodes)


def _sides(fault: Fault) -> list[list[NodeId]]:
    sides: dict[int, list[NodeId]] = {}
    for node, side in zip(fault.nodes, fault.values, strict=True):
        sides.setdefault(int(side), []).append(node)
    return [sorted(nodes) for _, nodes in sorted(sides.items())]


def _leader(world: World, group: int) -> NodeId | None:
    leaders = world.leaders(group)
    return leaders[-1] if leaders else None


def _crash_leader(world: World, fault: Fault) -> None:
    leader = _leader(world, int(fault.values[0]))
    if leader is not None:
        _crash_and_return(world, leader, fault.values[1:])


def _crash_and_return(world: World, node: NodeId, values: Sequence[float]) -> None:
    """`values`: power loss, torn, and milliseconds until it restarts (-1: it stays down)."""
    world.crash(node, power_loss=bool(values[0]), torn=bool(values[1]))
    if values[2] >= 0:
        world.loop.call_later(values[2] / 1000.0, world.start, node)


def _crash_new_leader(world: World, fault: Fault) -> None:
    """Wait for the group's next leader, and crash it `values[1]` ms into its term."""
    group = int(fault.values[0])
    current = _leadership(world, group)
    deadline = world.now + NEW_LEADER_WAIT_SECONDS

    def look() -> None:
        if not world.faults_enabled:
            return
        leadership = _leadership(world, group)
        if leadership is not None and leadership != current:
            world.loop.call_later(fault.values[1] / 1000.0, strike, leadership)
        elif world.now < deadline:
            world.loop.call_later(NEW_LEADER_POLL_SECONDS, look)

    def strike(leadership: tuple[NodeId, int]) -> None:
        if world.faults_enabled and _leadership(world, group) == leadership:
            world.note(f"fault: the new leader n{leadership[0]} of group {group} crashes")
            _crash_and_return(world, leadership[0], fault.values[2:])

    look()


def _leadership(world: World, group: int) -> tuple[NodeId, int] | None:
    """The group's latest leader and its term, if it has one."""
    leaders = world.leaders(group)
    if not leaders:
        return None
    driver = world.driver(leaders[-1], group)
    assert driver is not None
    return leaders[-1], driver.status().term


def _describe_return(values: Sequence[float]) -> str:
    text = " (power loss" + (", torn write)" if values[1] else ")") if values[0] else ""
    return text + (f", back {values[2]:.0f} ms later" if values[2] >= 0 else "")


def _isolate_leader(world: World, fault: Fault) -> None:
    leader = _leader(world, int(fault.values[0]))
    if leader is not None:
        world.partition([[leader], [node for node in sorted(world.nodes) if node != leader]])


def _cut_links(world: World, fault: Fault) -> None:
    for source, destination in zip(fault.nodes[::2], fault.nodes[1::2], strict=True):
        world.block(source, destination)


def _restart(world: World, fault: Fault) -> None:
    if not world.nodes[fault.nodes[0]].up:
        world.start(fault.nodes[0])


def _corrupt(world: World, fault: Fault) -> None:
    # Bit rot is found only when the log is read back: at the next start.
    world.corrupt_disk(fault.nodes[0])
    world.crash(fault.nodes[0])
    world.start(fault.nodes[0])


FAULT_KINDS: dict[str, FaultKind] = {
    # --- network and processes
    "crash": FaultKind(
        "network", lambda f: f"crash {_names(f.nodes)} (process: the page cache survives)",
        lambda w, f: w.crash(f.nodes[0])),
    "crash-leader": FaultKind(
        "network",
        lambda f: f"crash the leader of group {int(f.values[0])}"
                  + _describe_return(f.values[1:]),
        _crash_leader),
    "crash-new-leader": FaultKind(
        "network",
        lambda f: f"crash the next new leader of group {int(f.values[0])} "
                  f"{f.values[1]:.0f} ms into its term" + _describe_return(f.values[2:]),
        _crash_new_leader),
    "restart": FaultKind(
        "network", lambda f: f"restart {_names(f.nodes)} if down", _restart),
    "disconnect": FaultKind(
        "network", lambda f: f"disconnect {_names(f.nodes)}",
        lambda w, f: w.disconnect(f.nodes[0])),
    "connect": FaultKind(
        "network", lambda f: f"reconnect {_names(f.nodes)}", lambda w, f: w.connect(f.nodes[0])),
    "partition": FaultKind(
        "network", lambda f: "partition " + " | ".join(_names(side) for side in _sides(f)),
        lambda w, f: w.partition(_sides(f))),
    "isolate-leader": FaultKind(
        "network", lambda f: f"isolate the leader of group {int(f.values[0])}",
        _isolate_leader),
    "cut-links": FaultKind(
        "network",
        lambda f: "cut links " + ", ".join(
            f"n{a}->n{b}" for a, b in zip(f.nodes[::2], f.nodes[1::2], strict=True)),
        _cut_links),
    "heal": FaultKind("network", lambda f: "heal the network", lambda w, f: w.heal()),
    "network": FaultKind(
        "network", lambda f: f"network becomes {f.name}",
        lambda w, f: w.set_conditions(PRESETS[f.name])),
    # --- disks
    "power-loss": FaultKind(
        "disk",
        lambda f: f"power loss on {_names(f.nodes)}: unsynced writes lost"
                  + (", last record torn" if f.values[0] else ""),
        lambda w, f: w.crash(f.nodes[0], power_loss=True, torn=bool(f.values[0]))),
    "power-loss-in-fsync": FaultKind(
        "disk",
        lambda f: f"power loss on {_names(f.nodes)} during its next fsync"
                  + (", last record torn" if f.values[0] else "")
                  + (f", back {f.values[1]:.0f} ms later" if f.values[1] >= 0 else ""),
        lambda w, f: w.power_loss_in_next_fsync(
            f.nodes[0], torn=bool(f.values[0]),
            back_after=f.values[1] / 1000.0 if f.values[1] >= 0 else None)),
    "fail-fsync": FaultKind(
        "disk", lambda f: f"the next fsync on {_names(f.nodes)} fails (EIO)",
        lambda w, f: w.fail_next_fsync(f.nodes[0])),
    "corrupt": FaultKind(
        "disk", lambda f: f"a record on {_names(f.nodes)}'s disk rots; it restarts",
        _corrupt),
    "slow-disk": FaultKind(
        "disk", lambda f: f"{_names(f.nodes)}'s fsyncs take {f.values[0]:g}-"
                          f"{f.values[1]:g} ms",
        lambda w, f: w.set_fsync_latency(f.nodes[0], f.values[0], f.values[1])),
    # --- clocks
    "clock-rate": FaultKind(
        "clock", lambda f: f"{_names(f.nodes)}'s clock runs at {f.values[0]:.2f}x",
        lambda w, f: w.set_clock_rate(f.nodes[0], f.values[0])),
    "clock-jump": FaultKind(
        "clock", lambda f: f"{_names(f.nodes)}'s clock jumps {f.values[0]:.0f} ms ahead",
        lambda w, f: w.jump_clock(f.nodes[0], f.values[0] / 1000.0)),
}

FAMILIES = ("network", "disk", "clock")
# A fault that waits for a new leader looks this often, for this long.
NEW_LEADER_POLL_SECONDS = 0.005
NEW_LEADER_WAIT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class FaultMix:
    """Which families a schedule draws from, and how often an event happens."""

    network: bool = True
    disk: bool = True
    clock: bool = True
    mean_gap_ms: float = 150.0
    # Power losses lose unsynced writes; without them a crash keeps the page cache.
    lose_unsynced: bool = True

    def families(self) -> tuple[str, ...]:
        return tuple(family for family in FAMILIES if getattr(self, family))


def draw_schedule(rng: Random, nodes: Sequence[NodeId], groups: int, chaos_ms: float,
                  mix: FaultMix, weights: Mapping[str, int] | None = None) -> list[Fault]:
    """A random schedule over [0, chaos_ms) from the families `mix` enables."""
    chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
    if not mix.lose_unsynced:
        chosen.pop("power-loss", None)
        chosen.pop("power-loss-in-fsync", None)
    kinds = [(kind, weight) for kind, weight in chosen.items()
             if weight and FAULT_KINDS[kind].family in mix.families()]
    if not kinds:
        return []
    total = sum(weight for _, weight in kinds)
    schedule: list[Fault] = []
    at = 0.0
    while True:
        at += rng.expovariate(1.0 / mix.mean_gap_ms)
        if at >= chaos_ms:
            return schedule
        pick = rng.randrange(total)
        for kind, weight in kinds:
            if pick < weight:
                schedule.append(_draw(kind, round(at, 1), rng, nodes, groups, mix))
                break
            pick -= weight


DEFAULT_WEIGHTS: dict[str, int] = {
    "crash": 4, "crash-leader": 5, "crash-new-leader": 2, "restart": 12, "disconnect": 3,
    "connect": 4, "partition": 5, "isolate-leader": 5, "cut-links": 3, "heal": 6, "network": 5,
    "power-loss": 4, "power-loss-in-fsync": 4, "fail-fsync": 1, "corrupt": 1, "slow-disk": 5,
    "clock-rate": 3, "clock-jump": 1,
}


def _draw(kind: str, at: float, rng: Random, nodes: Sequence[NodeId], groups: int,
          mix: FaultMix) -> Fault:
    node = (rng.choice(nodes),)
    if kind in ("crash", "restart", "disconnect", "connect", "fail-fsync", "corrupt"):
        return Fault(at, kind, node)
    if kind in ("crash-leader", "crash-new-leader"):
        power_loss = mix.lose_unsynced and rng.random() < 0.5
        torn = power_loss and rng.random() < 0.5
        back = rng.choice((-1.0, -1.0, 20.0, 100.0, 400.0))
        crash = (float(power_loss), float(torn), back)
        if kind == "crash-leader":
            return Fault(at, kind, (), (rng.randrange(groups), *crash))
        return Fault(at, kind, (), (rng.randrange(groups), rng.uniform(0.0, 40.0), *crash))
    if kind == "power-loss":
        return Fault(at, kind, node, (float(rng.random() < 0.5),))
    if kind == "power-loss-in-fsync":
        back = rng.choice((5.0, 20.0, 100.0, 300.0, -1.0))
        return Fault(at, kind, node, (float(rng.random() < 0.5), back))
    if kind == "isolate-leader":
        return Fault(at, kind, (), (rng.randrange(groups),))
    if kind == "partition":
        shuffled = list(nodes)
        rng.shuffle(shuffled)
        cut = rng.randrange(1, len(shuffled)) if len(shuffled) > 1 else 1
        members = tuple(sorted(shuffled))
        sides = tuple(0.0 if shuffled.index(member) < cut else 1.0 for member in members)
        return Fault(at, kind, members, sides)
    if kind == "cut-links":
        pairs: list[NodeId] = []
        for _ in range(rng.randrange(1, max(2, len(nodes)))):
            if len(nodes) > 1:
                pairs.extend(rng.sample(list(nodes), 2))
        return Fault(at, kind, tuple(pairs))
    if kind == "heal":
        return Fault(at, kind)
    if kind == "network":
        return Fault(at, kind, name=rng.choice(sorted(PRESETS)))
    if kind == "slow-disk":
        if rng.random() < 0.3:
            return Fault(at, kind, node, (0.2, 1.0))
        low = rng.choice((5.0, 20.0, 50.0))
        return Fault(at, kind, node, (low, low * rng.choice((2.0, 4.0))))
    if kind == "clock-rate":
        return Fault(at, kind, node, (rng.choice((0.5, 0.8, 1.0, 1.25, 2.0)),))
    if kind == "clock-jump":
        return Fault(at, kind, node, (rng.choice((100.0, 500.0, 2000.0)),))
    raise ValueError(f"unknown fault kind {kind!r}")


def apply(world: World, fault: Fault) -> None:
    if not world.faults_enabled:
        return
    world.note(f"fault: {FAULT_KINDS[fault.kind].describe(fault)}")
    FAULT_KINDS[fault.kind].apply(world, fault)
