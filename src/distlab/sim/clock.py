"""Per-node virtual clocks: an offset and a rate, so timeouts fire at different speeds.

A node's clock reads `offset + elapsed * rate`, where `elapsed` is virtual time since the
rate last changed. A timer of `delay` seconds of the node's time fires after
`delay / rate` seconds of the simulation's: a node whose clock runs 20% fast times out 20%
sooner than its peers. Rates and offsets change at run time (clock faults); a pending timer
keeps the instant it was set for, as a timer armed before an NTP slew would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from distlab.runtime.host.ports import Timer


class NodeClock:
    """Implements the driver's `Clock` port for one node."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, offset: float = 0.0,
                 rate: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError(f"a clock rate is positive, not {rate}")
        self._loop = loop
        self._base_local = offset
        self._base_virtual = loop.time()
        self._rate = rate

    @property
    def rate(self) -> float:
        return self._rate

    def monotonic(self) -> float:
        return self._base_local + (self._loop.time() - self._base_virtual) * self._rate

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self._loop.call_later(delay / self._rate, callback)

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"a clock rate is positive, not {rate}")
        self._base_local = self.monotonic()
        self._base_virtual = self._loop.time()
        self._rate = rate

    def jump(self, seconds: float) -> None:
        """Step the clock (forward only: a monotonic clock never goes back)."""
        if seconds < 0:
            raise ValueError("a monotonic clock only jumps forward")
        self._base_local += seconds
