"""Per-node virtual clocks: an offset and a rate, so timeouts fire at different speeds, and a
wall clock whose error from the true (virtual) time the simulator sets.

A node's monotonic clock reads `offset + elapsed * rate`, where `elapsed` is virtual time
since the rate last changed. A timer of `delay` seconds of the node's time fires after
`delay / rate` seconds of the simulation's: a node whose clock runs 20% fast times out 20%
sooner than its peers. Rates and offsets change at run time (clock faults); a pending timer
keeps the instant it was set for, as a timer armed before an NTP slew would.

The wall clock runs off the same oscillator: it starts `wall_skew` seconds off the true time
(`SIM_EPOCH_NS` plus virtual time) and drifts with the rate, so a fast clock's error grows;
a jump steps both. TrueTime reads it through `wall_ns`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from distlab.runtime.host.ports import Timer

# The true wall time at the start of every simulated run: 2026-01-01T00:00:00Z, fixed, so that
# a seed replays the same timestamps.
SIM_EPOCH_NS = 1_767_225_600 * 1_000_000_000


class NodeClock:
    """Implements the driver's `Clock` port for one node."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, offset: float = 0.0,
                 rate: float = 1.0, wall_skew: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError(f"a clock rate is positive, not {rate}")
        self._loop = loop
        self._base_local = offset
        self._base_virtual = loop.time()
        # The wall clock's reading at the base, in seconds since the run's start.
        self._base_wall = self._base_virtual + wall_skew
        self._rate = rate

    @property
    def rate(self) -> float:
        return self._rate

    def monotonic(self) -> float:
        return self._base_local + (self._loop.time() - self._base_virtual) * self._rate

    def _wall_seconds(self) -> float:
        return self._base_wall + (self._loop.time() - self._base_virtual) * self._rate

    def wall_ns(self) -> int:
        return SIM_EPOCH_NS + round(self._wall_seconds() * 1e9)

    @property
    def wall_error(self) -> float:
        """How far the wall clock is ahead of the true time, in seconds (behind: negative)."""
        return self._wall_seconds() - self._loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self._loop.call_later(delay / self._rate, callback)

    def _rebase(self) -> None:
        self._base_local = self.monotonic()
        self._base_wall = self._wall_seconds()
        self._base_virtual = self._loop.time()

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"a clock rate is positive, not {rate}")
        self._rebase()
        self._rate = rate

    def set_wall_skew(self, seconds: float) -> None:
        """Set the wall clock `seconds` off the true time from now on (a clock sync that
        went wrong, or that put it right with 0); the monotonic clock is not touched."""
        self._rebase()
        self._base_wall = self._base_virtual + seconds

    def jump(self, seconds: float) -> None:
        """Step the clock (forward only: a monotonic clock never goes back)."""
        if seconds < 0:
            raise ValueError("a monotonic clock only jumps forward")
        self._base_local += seconds
        self._base_wall += seconds
