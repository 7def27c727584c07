"""The world: the real driver on the simulator's ports, its faults, and replay by seed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

from distlab.apps.kv import KVStateMachine
from distlab.core.ids import NodeId
from distlab.core.replicated_log import OutcomeUnknown
from distlab.runtime.host.driver import Timing
from distlab.sim import harness
from distlab.sim.clock import NodeClock
from distlab.sim.loop import VirtualTimeLoop
from distlab.sim.raft.engine import RaftEngine, RaftOptions
from distlab.sim.world import NodeSettings, World


def make_world(nodes: int = 3, *, seed: int = 7, groups: int = 1,
               settings: list[NodeSettings] | None = None) -> World:
    world = World(seed=seed, nodes=nodes, groups=groups,
                  make_engine=lambda w: RaftEngine(w, RaftOptions()),
                  make_machine=lambda node, group: KVStateMachine(),
                  timing=Timing(tick_seconds=0.025), settings=settings, trace=True)
    world.start_all()
    return world


def settle(world: World, group: int = 0) -> NodeId:
    for _ in range(100):
        world.run_for(0.1)
        leaders = world.leaders(group)
        if len(leaders) == 1:
            return leaders[0]
    raise AssertionError("no leader")


def test_a_clock_that_runs_fast_fires_its_timers_sooner() -> None:
    loop = VirtualTimeLoop()
    fast = NodeClock(loop, offset=100.0, rate=2.0)
    fired: list[float] = []
    fast.call_later(1.0, lambda: fired.append(loop.time()))
    loop.run_until_complete(_sleep(5))
    assert fired == [0.5]
    assert fast.monotonic() == 100.0 + 5 * 2.0
    fast.set_rate(1.0)
    fast.jump(3.0)
    loop.run_until_complete(_sleep(1))
    assert fast.monotonic() == 100.0 + 10.0 + 3.0 + 1.0
    loop.close()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def test_the_node_whose_clock_runs_fast_times_out_first() -> None:
    elected = []
    for seed in range(1, 7):
        settings = [NodeSettings(clock_rate=rate) for rate in (1.0, 3.0, 1.0)]
        world = make_world(seed=seed, settings=settings)
        elected.append(settle(world))
        world.close()
    assert elected.count(NodeId(2)) >= 5, elected


def test_a_failed_fsync_stops_the_node_for_good() -> None:
    world = make_world()
    leader = settle(world)
    world.fail_next_fsync(leader)
    driver = world.driver(leader)
    assert driver is not None

    async def propose() -> None:
        with contextlib.suppress(OutcomeUnknown):
            await driver.propose(b"\x00")

    world.run(propose())
    world.run_for(0.5)
    node = world.nodes[leader]
    assert not node.up
    assert driver.failed is not None and "fsync failed" in str(driver.failed)
    assert any("fsync failed" in fault for fault in world.detected_faults)
    # the others carry on without it
    assert settle(world) != leader
    world.close()


def test_a_rotten_record_is_found_at_restart_and_the_node_refuses_to_start() -> None:
    world = make_world()
    settle(world)
    world.run_for(0.5)
    victim = NodeId(1)
    world.crash(victim)
    world.corrupt_disk(victim)
    assert not world.start(victim)
    node = world.nodes[victim]
    assert not node.up and node.refused is not None and "checksum" in node.refused
    assert world.detected_faults == [node.refused]
    assert world.failure is None
    world.close()


def test_a_seed_replays_byte_for_byte_even_in_another_process() -> None:
    spec = harness.protocol("raft")
    first, world = harness.run_seed(spec, 11, 5, trace=True)
    second, again = harness.run_seed(spec, 11, 5, trace=True)
    trace = world.trace_text()
    assert first.ok, first.failure
    assert "fault:" in trace and "client p" in trace and "dropped" in trace
    assert trace.encode() == again.trace_text().encode()
    assert first == second
    other, _ = harness.run_seed(spec, 12, 5)
    assert other.fingerprint != first.fingerprint
    script = ("from distlab.sim import harness\n"
              "r, w = harness.run_seed(harness.protocol('raft'), 11, 5, trace=True)\n"
              "import sys; sys.stdout.write(w.trace_text())\n")
    elsewhere = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": "12345"}, timeout=120)
    assert elsewhere.stdout == trace.encode()
