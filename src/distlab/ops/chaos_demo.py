"""The chaos demo: write, kill the container of group 0's leader, show that nothing
acknowledged was lost, then start it again and watch it catch up in every group."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from distlab.client import KVClient, KVError
from distlab.core.ids import NodeId
from distlab.ops.faults import ComposeContainers, FaultError
from distlab.ops.status import ClusterTimeout, wait_caught_up, wait_for_leader
from distlab.wire.addresses import Address

POLL_INTERVAL_SECONDS = 0.2
WRITE_BUDGET_SECONDS = 10.0


class DemoFailed(Exception):
    """A phase of the demo did not finish within its budget, or a fault was not applied."""


@dataclass(slots=True)
class Writers:
    """Concurrent writers of distinct keys; remembers exactly which writes were acknowledged."""

    client: KVClient
    prefix: str
    acknowledged: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    _next: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, count: int) -> None:
        self._tasks = [asyncio.create_task(self._write()) for _ in range(count)]

    async def _write(self) -> None:
        while not self._stop.is_set():
            index, self._next = self._next, self._next + 1
            key, value = f"{self.prefix}-{index:06d}", f"value-{index}"
            try:
                await self.client.put(key, value, budget=WRITE_BUDGET_SECONDS)
            except KVError:
                self.failed += 1  # not acknowledged: it may or may not have happened
            else:
                self.acknowledged[key] = value

    async def wait_for(self, count: int, budget: float) -> None:
        deadline = time.monotonic() + budget
        while len(self.acknowledged) < count:
            if time.monotonic() > deadline:
                raise DemoFailed(f"writes stalled at {len(self.acknowledged)} acknowledged")
            await asyncio.sleep(POLL_INTERVAL_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def kill_leader_demo(cluster: Mapping[NodeId, Address], containers: ComposeContainers,
                           writers: int, writes: int, budget: float,
                           say: Callable[[str], None]) -> list[str]:
    """Run the demo, telling each step with `say`; returns the acknowledged keys that did
    not read back (none, unless the store lost a write). Raises DemoFailed."""
    try:
        return await _demo(cluster, containers, writers, writes, budget, say)
    except (ClusterTimeout, FaultError) as error:
        raise DemoFailed(str(error)) from error


async def _demo(cluster: Mapping[NodeId, Address], containers: ComposeContainers,
                writer_count: int, writes: int, budget: float, say: Callable[[str], None]
                ) -> list[str]:
    leaders = await wait_for_leader(cluster, budget)
    say("leaders: " + ", ".join(f"group {group}: node {node}"
                                for group, node in sorted(leaders.items())))
    async with KVClient(cluster, call_timeout=1.0, operation_timeout=30.0) as client:
        writers = Writers(client, f"demo-{int(time.time())}")
        writers.start(writer_count)
        try:
            await writers.wait_for(writes, budget)
            old = (await wait_for_leader(cluster, budget))[0]
            done = await containers.operate("kill", f"node{old}")
            killed_at = time.monotonic()
            say(f"{done} (the leader of group 0) after {len(writers.acknowledged)} "
                "acknowledged writes")
            new = await wait_for_leader(cluster, budget, exclude=old)
            say(f"new leaders: {', '.join(f'group {g}: node {n}' for g, n in sorted(new.items()))}"
                f", {time.monotonic() - killed_at:.1f} s after the kill")
            await writers.wait_for(len(writers.acknowledged) + writes, budget)
        finally:
            await writers.stop()
        say(f"{len(writers.acknowledged)} writes acknowledged, {writers.failed} without an "
            "answer in time; reading every acknowledged key back")
        lost = [key for key, value in sorted(writers.acknowledged.items())
                if await client.get(key) != value]
    if lost:
        say(f"LOST {len(lost)} acknowledged writes, e.g. {lost[:5]}")
    else:
        say("every acknowledged write reads back: nothing was lost")
    done = await containers.operate("start", f"node{old}")
    applied = await wait_caught_up(cluster, old, budget)
    say(f"{done}; it caught up to index "
        + ", ".join(f"{index} in group {group}" for group, index in sorted(applied.items())))
    return lost
