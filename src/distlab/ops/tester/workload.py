"""The clients of a test run: concurrent workers invoking a mix of KV operations at a rate,
each recording invoke and outcome in the history.

Outcomes follow the client's three-way answer: success is `ok`, a `Definite` failure
(including a cas whose expected value did not match) is `fail`, an `Indefinite` one is
`info`. A worker whose operation ended in `info` continues as a new process, because the
old one may still have an operation in flight (DESIGN §9).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

from distlab.check import HistoryRecorder
from distlab.check.tester.mix import Mix
from distlab.client import Definite, Indefinite, KVClient, KVError
from distlab.core.ids import NodeId
from distlab.ops.tester.chain_store import ChainStore
from distlab.wire.addresses import Address

CALL_TIMEOUT_SECONDS = 1.0
FINAL_READ_BUDGET_SECONDS = 10.0
FINAL_READ_ATTEMPTS = 3


@dataclass(slots=True)
class Tally:
    """Outcomes so far, for progress lines."""

    ok: int = 0
    fail: int = 0
    info: int = 0
    by_f: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.ok + self.fail + self.info


class Pacer:
    """Spaces invocations so that all workers together stay at `rate` per second.

    A slot that is already past is not made up for: after a stall the workers resume at
    the rate rather than in a burst.
    """

    def __init__(self, rate: float) -> None:
        assert rate > 0
        self._gap = 1.0 / rate
        self._next = time.monotonic()

    async def wait_turn(self) -> None:
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self._gap
        if slot > now:
            await asyncio.sleep(slot - now)


# How long past its budget a client call may run before the workload gives up on it.
CLIENT_GRACE_SECONDS = 5.0


class Clients:
    """One leader-following client for writes (and for reads, unless `read_from_any`),
    plus one client per member for reads sent to a random member."""

    def __init__(self, addresses: Mapping[NodeId, Address], operation_timeout: float,
                 read_from_any: bool, rng: Random, system: str = "kv",
                 read_mode: str = "cr") -> None:
        members = {node: str(address) for node, address in addresses.items()}
        self.operation_timeout = operation_timeout
        self._rng = rng
        self.writer: Any
        self._readers: list[Any]
        if system == "chain":
            # The chain client picks the replica each read goes to (the tail, or any one).
            self.writer = ChainStore(members, read_mode, operation_timeout)
            self._readers = []
            return
        self.writer = KVClient(members, call_timeout=CALL_TIMEOUT_SECONDS,
                               operation_timeout=operation_timeout)
        self._readers = [KVClient([address], call_timeout=CALL_TIMEOUT_SECONDS,
                                  operation_timeout=operation_timeout)
                         for address in members.values()] if read_from_any else []

    def reader(self) -> Any:
        return self._rng.choice(self._readers) if self._readers else self.writer

    def overruns(self) -> list[str]:
        """The calls gRPC did not end by their deadline (each client cut them off and went
        on within its budget), per client that had any: a fault of the client's stack to
        report, not of the cluster."""
        return [f"{client.overrun_calls} call(s) outlived their gRPC deadline and were cut "
                f"off by the client; last: {client.last_overrun}"
                for client in [self.writer, *self._readers] if client.overrun_calls]

    async def close(self) -> None:
        for client in [self.writer, *self._readers]:
            await client.close()


class Workload:
    """`concurrency` workers invoking operations from `mix` on `keys` until stopped."""

    def __init__(self, recorder: HistoryRecorder, clients: Clients, mix: Mix,
                 keys: Sequence[str], rate: float, concurrency: int, rng: Random) -> None:
        assert concurrency > 0 and keys
        self._recorder = recorder
        self._clients = clients
        self._mix = mix
        self._keys = list(keys)
        self._pacer = Pacer(rate)
        self._concurrency = concurrency
        self._rng = rng
        self._process_ids = itertools.count()
        self._written: dict[int, int] = {}
        # The last value anyone saw for each key: the expected value of the next cas, so
        # that some of them succeed.
        self._last_seen: dict[str, str | None] = {}
        self.tally = Tally()
        # Failures that were not answers from the store (a bug, or a broken connection
        # library): recorded as info and reported.
        self.unexpected: list[str] = []
        self._stopping = asyncio.Event()

    def new_process(self) -> int:
        return next(self._process_ids)

    def stop(self) -> None:
        """Workers finish the operation they are in, then return."""
        self._stopping.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self._concurrency)))

    async def _worker(self) -> None:
        process = self.new_process()
        while True:
            await self._pacer.wait_turn()
            if self._stopping.is_set():
                return
            f = self._mix.choose(self._rng)
            key = self._rng.choice(self._keys)
            if await self.perform(process, f, key) == "info":
                process = self.new_process()

    def _unique_value(self, process: int) -> str:
        number = self._written.get(process, 0) + 1
        self._written[process] = number
        return f"p{process}-{number}"

    async def perform(self, process: int, f: str, key: str,
                      budget: float | None = None) -> str:
        """Invoke `f` on `key` as `process`, record the outcome, and return it.

        The client keeps to its budget; should it not (a bug), the operation is abandoned
        as indefinite after a grace, reported among the unexpected failures, and the run goes
        on instead of waiting for it forever.
        """
        limit = (budget or self._clients.operation_timeout) + CLIENT_GRACE_SECONDS
        try:
            async with asyncio.timeout(limit):
                return await self._perform(process, f, key, budget)
        except TimeoutError:
            self.unexpected.append(f"{f} {key!r}: the client did not return within {limit:g} s")
            self._recorder.info(process)
            return self._count("info", f)

    async def _perform(self, process: int, f: str, key: str, budget: float | None) -> str:
        recorder = self._recorder
        client = self._clients.writer
        try:
            if f == "get":
                recorder.invoke(process, "get", key, None)
                value = await self._clients.reader().get(key, budget=budget)
                self._last_seen[key] = value
                recorder.ok(process, value)
            elif f == "put":
                new = self._unique_value(process)
                recorder.invoke(process, "put", key, new)
                await client.put(key, new, budget=budget)
                self._last_seen[key] = new
                recorder.ok(process)
            elif f == "append":
                suffix = self._unique_value(process)
                recorder.invoke(process, "append", key, suffix)
                await client.append(key, suffix, budget=budget)
                recorder.ok(process)
            elif f == "cas":
                expected = self._last_seen.get(key)
                new = self._unique_value(process)
                recorder.invoke(process, "cas", key, [expected, new])
                if await client.cas(key, expected, new, budget=budget):
                    self._last_seen[key] = new
                    recorder.ok(process)
                else:
                    recorder.fail(process)
                    return self._count("fail", f)
            elif f == "delete":
                recorder.invoke(process, "delete", key, None)
                await client.delete(key, budget=budget)
                self._last_seen[key] = None
                recorder.ok(process)
            else:
                raise ValueError(f"the workload cannot invoke {f!r}")
        except Definite:
            recorder.fail(process)
            return self._count("fail", f)
        except Indefinite:
            recorder.info(process)
            return self._count("info", f)
        except Exception as error:
            # Not an answer from the store: whether the operation happened is unknown.
            self.unexpected.append(f"{f} {key!r}: {type(error).__name__}: {error}")
            recorder.info(process)
            return self._count("info", f)
        return self._count("ok", f)

    def _count(self, outcome: str, f: str) -> str:
        setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
        self.tally.by_f[f] = self.tally.by_f.get(f, 0) + 1
        return outcome

    async def final_reads(self) -> dict[str, str | None]:
        """Read every key once, through the leader, each as a fresh process; a read that
        fails (definitely, so it changed nothing) is tried again a few times."""
        values: dict[str, str | None] = {}
        for key in self._keys:
            process = self.new_process()
            for _ in range(FINAL_READ_ATTEMPTS):
                recorder = self._recorder
                recorder.invoke(process, "get", key, None)
                try:
                    value = await self._clients.writer.get(key, budget=FINAL_READ_BUDGET_SECONDS)
                except KVError:
                    recorder.fail(process)
                    self._count("fail", "get")
                    continue
                recorder.ok(process, value)
                self._count("ok", "get")
                values[key] = value
                break
        return values
