"""Simulated clients of the chain, recording a history for the linearizability checker.

They behave as `distlab chain` does: a client learns the chain from a member's copy of the
master, writes at the head, reads at the tail (CR) or at a random replica (CRAQ), follows a
refusal's hint, and retries until its budget runs out: what definitely did not happen, and
a write whose outcome is unknown too, under the same name (the process is the client, and
its writes are numbered), which the chain applies at most once. A write still unknown when
its budget is spent is recorded `info` and its process retires; a read changes nothing, so a
read that got no answer is `fail`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from random import Random
from typing import Any

from distlab.check import CheckResult, History, check, parse_history
from distlab.core.ids import NodeId
from distlab.core.replicated_log import OutcomeUnknown
from distlab.protocols.chain import ChainConfig, Outcome, ReadMode
from distlab.runtime.chain.driver import ChainDriver, ChainRefused
from distlab.sim.chain.engine import ChainEngine
from distlab.sim.workload import CHECK_SLICES, WorkloadSettings
from distlab.sim.world import World

BACKOFF_SECONDS = 0.02


class ChainWorkload:
    """Implements `distlab.sim.workload.Workload` for the chain."""

    def __init__(self, world: World, rng: Random, settings: WorkloadSettings,
                 read_mode: str) -> None:
        self.world = world
        self.rng = rng
        self.settings = settings
        self.read_mode = ReadMode(read_mode)
        self.keys = [f"k{index}" for index in range(settings.keys)]
        self.lines: list[str] = []
        self.completed = {"ok": 0, "fail": 0, "info": 0}
        self._processes = itertools.count(1)
        self._values = itertools.count(1)
        # Each process's last write number: a process is one client of the chain.
        self._requests: dict[int, int] = {}
        engine = world.engine
        assert isinstance(engine, ChainEngine)
        self._engine = engine

    # ------------------------------------------------------------------ phases

    async def run_clients(self, until: float) -> None:
        await asyncio.gather(*(self._client(next(self._processes), until)
                               for _ in range(self.settings.clients)))

    async def converge(self, timeout: float) -> str | None:
        """After healing: every live replica back in the chain, a write committed and seen
        by every replica, then one read of every key."""
        world = self.world
        deadline = world.now + timeout
        process = next(self._processes)
        while world.now < deadline:
            config = self._config()
            live = set(world.live_nodes())
            if config is not None and set(config.chain) >= live and config.joining is None:
                break
            await asyncio.sleep(0.05)
        else:
            config = self._config()
            return (f"the chain did not take every live replica back within {timeout:g} s "
                    f"after healing: {config}")
        outcome = "fail"
        while outcome != "ok" and world.now < deadline:
            outcome = await self._put(process, "k0", "final", deadline)
            if outcome == "info":
                process = next(self._processes)
        if outcome != "ok":
            return f"no progress after healing: the chain committed no write in {timeout:g} s"
        while world.now < deadline:
            cores = [driver.core for driver in self._engine.replicas.values()]
            if cores and all(core.committed == core.last and core.sent == 0 for core in cores):
                break
            await asyncio.sleep(0.02)
        else:
            return f"replicas still behind {timeout:g} s after healing"
        for key in self.keys:
            await self._get(process, key, deadline + timeout, ReadMode.CR)
        return None

    def history(self) -> History:
        return parse_history("\n".join(self.lines) + "\n", "simulated chain clients")

    def check(self) -> CheckResult:
        slices = itertools.count()
        return check(self.history(), "kv", timeout=CHECK_SLICES,
                     clock=lambda: float(next(slices)))

    # ------------------------------------------------------------------ clients

    async def _client(self, process: int, until: float) -> None:
        rng = self.rng
        world = self.world
        low, high = self.settings.think_ms
        reads, writes = self.settings.mix[0], sum(self.settings.mix[1:])
        while world.now < until:
            await asyncio.sleep((low + (high - low) * rng.random()) / 1000.0)
            key = rng.choice(self.keys)
            deadline = world.now + self.settings.operation_seconds
            if rng.randrange(reads + writes) < reads:
                await self._get(process, key, deadline, self.read_mode)
            elif await self._put(process, key, f"{next(self._values)}", deadline) == "info":
                process = next(self._processes)

    def _config(self) -> ChainConfig | None:
        """The chain as a live member's copy of the master has it (the newest epoch)."""
        best: ChainConfig | None = None
        for node in self.world.live_nodes():
            driver = self.world.driver(node, 0)
            if driver is None:
                continue
            config: ChainConfig = driver.machine.chain_master.config  # type: ignore[union-attr]
            if config.chain and (best is None or config.epoch > best.epoch):
                best = config
        return best

    def _replica(self, node: NodeId | None) -> ChainDriver | None:
        return self._engine.replicas.get(node) if node is not None else None

    async def _put(self, process: int, key: str, value: str, deadline: float) -> str:
        world = self.world
        self._record(process, "invoke", "put", key, value)
        request = self._requests[process] = self._requests.get(process, 0) + 1
        hint: NodeId | None = None
        maybe_applied = False
        while world.now < deadline:
            config = self._config()
            replica = self._replica(hint or (config.head if config is not None else None))
            hint = None
            if replica is None:
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            try:
                async with asyncio.timeout(min(self.settings.attempt_seconds,
                                               deadline - world.now)):
                    await replica.write(key.encode(), value.encode(), process, request)
            except ChainRefused as refused:
                if refused.outcome is Outcome.STALE:
                    # A newer write of ours is in: an earlier attempt may have been applied.
                    maybe_applied = True
                    break
                hint = refused.hint
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            except (OutcomeUnknown, TimeoutError):
                maybe_applied = True
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            self._record(process, "ok", "put", key, value)
            return "ok"
        outcome = "info" if maybe_applied else "fail"
        self._record(process, outcome, "put", key, value)
        return outcome

    async def _get(self, process: int, key: str, deadline: float, mode: ReadMode) -> None:
        world = self.world
        self._record(process, "invoke", "get", key, None)
        while world.now < deadline:
            config = self._config()
            if mode is ReadMode.CR or config is None:
                target = config.tail if config is not None else None
            else:
                target = self.rng.choice(config.chain)
            replica = self._replica(target)
            if replica is None:
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            try:
                async with asyncio.timeout(min(self.settings.attempt_seconds,
                                               deadline - world.now)):
                    result = await replica.read(key.encode(), mode)
            except (ChainRefused, OutcomeUnknown, TimeoutError):
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            value = None if result.value is None else result.value.decode()
            self._record(process, "ok", "get", key, value)
            return
        self._record(process, "fail", "get", key, None)

    def _record(self, process: int, kind: str, f: str, key: str, value: Any) -> None:
        if kind != "invoke":
            self.completed[kind] += 1
        self.lines.append(json.dumps({
            "process": process, "type": kind, "f": f, "key": key, "value": value,
            "time": round(self.world.now * 1e9)}))
        self.world.note(f"client p{process} {kind} {f} {key} {value!r}")
