"""Simulated clients of the replicated KV store, recording a history for the checker.

Clients behave as `distlab.client` does against a real cluster, minus gRPC: each operation
has a time budget; within it the client sends to the member it believes leads its key's
group (`crc32(key) % groups`, as every node and client shards), follows NotLeader's hint,
and retries an attempt whose outcome is unknown with the same session and sequence, which
the store applies at most once. A write is proposed through the group's driver and its
result decoded from the state machine's answer; a read waits for the driver's read barrier
and then reads the member's own state machine, as the KV servicer does.

Every operation is recorded in DESIGN §9's history format, with virtual-time stamps:
`ok` when it happened, `fail` when it certainly did not (a refused or unmatched write, a read
that got no answer), `info` when it may have (the process then retires, and the client goes
on under a new process id).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any, Protocol, TypeVar, cast

from distlab.apps import kv
from distlab.apps.kv import KVStateMachine
from distlab.check import CheckResult, History, check, parse_history
from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown
from distlab.runtime.host.driver import Driver
from distlab.sim.world import World

T = TypeVar("T")

BACKOFF_SECONDS = 0.02
# The checker's budget, in slices of its search (a deterministic count, not seconds): a
# history this workload makes needs a handful; a verdict beyond it is "unknown".
CHECK_SLICES = 400


def group_of(key: str, groups: int) -> int:
    return zlib.crc32(key.encode()) % groups


def _keys(count: int, groups: int) -> list[str]:
    """`count` keys, more if needed so that every group holds at least one."""
    keys: list[str] = []
    covered: set[int] = set()
    index = 0
    while len(keys) < count or len(covered) < groups:
        key = f"k{index}"
        index += 1
        group = group_of(key, groups)
        if len(keys) < count or group not in covered:
            keys.append(key)
            covered.add(group)
    return keys


@dataclass(frozen=True, slots=True)
class WorkloadSettings:
    clients: int = 4
    keys: int = 6
    think_ms: tuple[float, float] = (5.0, 60.0)
    attempt_seconds: float = 0.5
    operation_seconds: float = 2.0
    # Relative weights of get, put, append, cas.
    mix: tuple[int, int, int, int] = (4, 3, 2, 1)


class Clients(Protocol):
    """Clients of a protocol's service, as a run drives them."""

    lines: list[str]
    completed: dict[str, int]

    async def run_clients(self, until: float) -> None: ...

    async def converge(self, timeout: float) -> str | None:
        """After healing: a problem with progress, or None."""
        ...


class Workload(Clients, Protocol):
    """Clients whose history the linearizability checker reads."""

    def check(self) -> CheckResult: ...


class _Definite(Exception):
    """The operation was never applied (no member accepted it)."""


class _Indefinite(Exception):
    """The operation may have been applied."""


@dataclass(slots=True)
class _Client:
    client_id: int
    process: int
    sequence: int = 0
    sessions: set[int] = field(default_factory=set)
    leaders: dict[int, NodeId] = field(default_factory=dict)


class KVWorkload:
    """Clients of the KV store over `world`'s groups; their history; its check."""

    def __init__(self, world: World, rng: Random, settings: WorkloadSettings) -> None:
        self.world = world
        self.rng = rng
        self.settings = settings
        self.keys = _keys(settings.keys, world.groups)
        # The last value a client saw for each key: compare-and-sets mostly expect it, so
        # that some of them succeed.
        self._last_seen: dict[str, str | None] = {}
        self.lines: list[str] = []
        self._processes = itertools.count(1)
        self._values = itertools.count(1)
        self.completed = {"ok": 0, "fail": 0, "info": 0}
        self._nodes = sorted(world.nodes)

    # ------------------------------------------------------------------ phases

    async def run_clients(self, until: float) -> None:
        """Clients issue operations until virtual time `until`, then finish what they do."""
        clients = [self._new_client() for _ in range(self.settings.clients)]
        await asyncio.gather(*(self._client_loop(client, until) for client in clients))

    async def converge(self, timeout: float) -> str | None:
        """After healing: every group must commit a write, and every member that is up must
        apply it, within `timeout`; then one read of every key. A problem, or None."""
        world = self.world
        client = self._new_client()
        deadline = world.now + timeout
        for group in range(world.groups):
            key = self._key_in_group(group)
            if key is None:
                continue
            try:
                await self._write(client, "put", key, f"final-{group}", deadline)
            except (_Definite, _Indefinite):
                return f"no progress after healing: group {group} committed nothing in " \
                       f"{timeout:g} s"
        while world.now < deadline:
            if self._all_applied():
                break
            await asyncio.sleep(0.02)
        else:
            return f"members still behind {timeout:g} s after healing"
        for key in self.keys:
            await self._read(client, key, deadline + timeout)
        return None

    def history(self) -> History:
        return parse_history("\n".join(self.lines) + "\n", "simulated clients")

    def check(self) -> CheckResult:
        slices = itertools.count()
        return check(self.history(), "kv", timeout=CHECK_SLICES,
                     clock=lambda: float(next(slices)))

    # ------------------------------------------------------------------ clients

    def _new_client(self) -> _Client:
        return _Client(client_id=self.rng.getrandbits(63) or 1, process=next(self._processes))

    async def _client_loop(self, client: _Client, until: float) -> None:
        rng = self.rng
        world = self.world
        low, high = self.settings.think_ms
        get, put, append, cas = self.settings.mix
        total = get + put + append + cas
        while world.now < until:
            await asyncio.sleep((low + (high - low) * rng.random()) / 1000.0)
            key = rng.choice(self.keys)
            pick = rng.randrange(total)
            deadline = world.now + self.settings.operation_seconds
            if pick < get:
                await self._read(client, key, deadline)
                continue
            value = f"{next(self._values)}"
            try:
                if pick < get + put:
                    await self._write(client, "put", key, value, deadline)
                elif pick < get + put + append:
                    await self._write(client, "append", key, f"{value};", deadline)
                else:
                    expected = self._last_seen.get(key) if rng.random() < 0.7 else None
                    await self._write(client, "cas", key, (expected, value), deadline)
            except (_Definite, _Indefinite):
                pass

    async def _write(self, client: _Client, f: str, key: str, value: Any,
                     deadline: float) -> None:
        group = group_of(key, self.world.groups)
        if group not in client.sessions:
            await self._call(client, group, deadline,
                             lambda driver: driver.propose(kv.open_session_command(
                                 client.client_id)))
            client.sessions.add(group)
        client.sequence += 1
        sequence = client.sequence
        # The store holds bytes; the history speaks text, as a client's users do.
        key_bytes = key.encode()
        if f == "put":
            command = kv.put_command(client.client_id, sequence, key_bytes, value.encode())
        elif f == "append":
            command = kv.append_command(client.client_id, sequence, key_bytes, value.encode())
        else:
            expected, new = value
            command = kv.cas_command(client.client_id, sequence, key_bytes,
                                     None if expected is None else expected.encode(),
                                     new.encode())
        recorded = list(value) if f == "cas" else value
        self._record(client.process, "invoke", f, key, recorded)
        try:
            encoded = await self._call(client, group, deadline,
                                       lambda driver: driver.propose(command))
        except _Definite:
            self._record(client.process, "fail", f, key, recorded)
            raise
        except _Indefinite:
            self._record(client.process, "info", f, key, recorded)
            client.process = next(self._processes)
            raise
        result = kv.decode_result(encoded)
        if result.status == kv.OK and (f != "cas" or result.ok):
            self._record(client.process, "ok", f, key, recorded)
            if f == "put":
                self._last_seen[key] = value
            elif f == "cas":
                self._last_seen[key] = value[1]
        elif result.status == kv.OK or result.status == kv.SESSION_EXPIRED:
            self._record(client.process, "fail", f, key, recorded)  # unmatched, or refused
        else:
            self._record(client.process, "info", f, key, recorded)
            client.process = next(self._processes)

    async def _read(self, client: _Client, key: str, deadline: float) -> None:
        group = group_of(key, self.world.groups)
        self._record(client.process, "invoke", "get", key, None)

        async def read(driver: Driver[Any]) -> str | None:
            await driver.read_barrier()
            found = cast(KVStateMachine, driver.machine.machine).get(key.encode())
            return None if found is None else found.decode()

        try:
            value = await self._call(client, group, deadline, read)
        except (_Definite, _Indefinite):
            self._record(client.process, "fail", "get", key, None)  # a read changes nothing
            return
        self._record(client.process, "ok", "get", key, value)
        self._last_seen[key] = value

    async def _call(self, client: _Client, group: int, deadline: float,
                    attempt: Callable[[Driver[Any]], Awaitable[T]]) -> T:
        """Try `attempt` on the leader until it answers or the deadline passes."""
        world = self.world
        maybe_applied = False
        while world.now < deadline:
            node = client.leaders.get(group) or self.rng.choice(self._nodes)
            driver = world.driver(node, group)
            if driver is None:  # connection refused: nothing was sent
                client.leaders.pop(group, None)
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            try:
                async with asyncio.timeout(min(self.settings.attempt_seconds,
                                               deadline - world.now)):
                    return await attempt(driver)
            except NotLeader as error:
                if error.leader_id and error.leader_id != node:
                    client.leaders[group] = error.leader_id
                else:
                    client.leaders.pop(group, None)
                    await asyncio.sleep(BACKOFF_SECONDS)
            except (OutcomeUnknown, TimeoutError):
                maybe_applied = True
                client.leaders.pop(group, None)
                await asyncio.sleep(BACKOFF_SECONDS)
        raise _Indefinite() if maybe_applied else _Definite()

    # ------------------------------------------------------------------ helpers

    def _record(self, process: int, kind: str, f: str, key: str, value: Any) -> None:
        if kind != "invoke":
            self.completed[kind] += 1
        self.lines.append(json.dumps({
            "process": process, "type": kind, "f": f, "key": key, "value": value,
            "time": round(self.world.now * 1e9)}))
        self.world.note(f"client p{process} {kind} {f} {key} {value!r}")

    def _key_in_group(self, group: int) -> str | None:
        for key in self.keys:
            if group_of(key, self.world.groups) == group:
                return key
        return None

    def _all_applied(self) -> bool:
        world = self.world
        for group in range(world.groups):
            indexes = [driver.status().applied_index for node in world.live_nodes()
                       if (driver := world.driver(node, group)) is not None]
            commits = [driver.status().commit_index for node in world.live_nodes()
                       if (driver := world.driver(node, group)) is not None]
            if indexes and min(indexes) < max(commits):
                return False
        return True
