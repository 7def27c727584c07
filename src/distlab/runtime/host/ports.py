"""The ports through which a driver reaches the world: Clock, Transport and Storage.

A driver never calls the operating system itself. In a node the ports are real time, the
gRPC peer transport and the node's write-ahead log; in the simulator they are virtual time
(with per-node offset and drift), a seeded faulty network and a simulated disk, so the very
same driver runs on a deterministic event loop. The RNG port is a `random.Random`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry import context as otel_context


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """One node's time: monotonic seconds for timeouts, and a wall-clock reading for
    TrueTime (distlab.core.truetime), which may be off from the true time."""

    def monotonic(self) -> float: ...

    def wall_ns(self) -> int:
        """The node's wall clock: nanoseconds since the Unix epoch, as this node reads it."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop after `delay` seconds of this node's time."""
        ...


class LoopClock:
    """Real time: the running event loop's clock (which the simulator's loop makes virtual),
    and the system's wall clock plus `wall_skew_ns` (CLOCK_SKEW_MS, an injected error)."""

    def __init__(self, wall_skew_ns: int = 0) -> None:
        self.wall_skew_ns = wall_skew_ns

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def wall_ns(self) -> int:
        return time.time_ns() + self.wall_skew_ns

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait `seconds` of `clock`'s time (virtual in the simulator)."""
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    clock.call_later(seconds, wake)
    await woken


class Transport(Protocol):
    """One instance's outbound messages; sending never waits.

    Delivery is best effort (the protocols retransmit). The transport reports back to the
    driver, through the callbacks it was built with, the peers it cannot reach and the
    outcome of snapshot sends.
    """

    def send(self, message: Any, trace_context: otel_context.Context | None) -> None: ...


class Storage(Protocol):
    """One instance's durable state, beyond what its core reads at start-up.

    `persist` returns once everything the Ready asks to keep is durable (fsynced); the driver
    sends nothing that depends on it before then. A failed write or fsync raises: the driver
    then stops, never carrying on as if the data were safe.
    """

    async def persist(self, ready: Any) -> None: ...

    def save_snapshot(self, snapshot: Any) -> None:
        """Keep a snapshot taken here and drop the log it covers; durable on return."""
        ...

    def close(self) -> None: ...
