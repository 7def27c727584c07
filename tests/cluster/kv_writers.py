"""Writers that remember exactly which writes were acknowledged, for crash tests."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from distlab.client import KVClient, KVError


class Writer:
    """Writes key i = value i in a loop; remembers exactly which writes were acknowledged."""

    def __init__(self, client: KVClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.acknowledged: dict[str, str] = {}
        self.failed = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            key, value = f"{self.prefix}-{i}", f"v{i}"
            try:
                await self.client.put(key, value, budget=5.0)
            except KVError:
                self.failed += 1
            else:
                self.acknowledged[key] = value
            i += 1

    async def wait_acks(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.acknowledged) + count
        while len(self.acknowledged) < target:
            if time.monotonic() > deadline:
                pytest.fail(f"writes stalled at {len(self.acknowledged)} acknowledgements")
            await asyncio.sleep(0.02)  # polling interval

    async def stop(self) -> None:
        """Stop now: a write in flight is abandoned (its outcome unknown, so it is not
        counted as acknowledged), rather than left to spend its budget against a cluster
        that may be down."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# Reads in flight at once while checking: the keys are many (every write a crash test
# acknowledged), and one read at a time spends most of its time waiting on the network.
READERS = 16


async def assert_all_readable(client: KVClient, expected: dict[str, str]) -> None:
    assert expected, "the test acknowledged no writes"
    keys = iter(expected)

    async def reader() -> None:
        for key in keys:
            assert await client.get(key) == expected[key], key

    await asyncio.gather(*(reader() for _ in range(READERS)))
