"""TrueTime (Corbett et al., Spanner, OSDI 2012 §3): the time as an interval that contains it.

`TT.now()` returns `[earliest, latest]`, the node's wall-clock reading widened by epsilon, the
bound on how far that reading may be from the true time; `TT.after(t)` is true once `t` has
certainly passed, `TT.before(t)` while it certainly has not. Spanner's epsilon is a sawtooth:
the time daemon syncs with the time masters every 30 s, right after a sync the uncertainty is
about 1 ms, and it grows with the assumed worst-case drift (200 us/s) to about 7 ms before the
next one. A fixed epsilon is the simpler model.

The guarantee holds only while the clock is within epsilon of the truth: a node whose clock
is off by more (an injected skew, drift left unchecked) hands out intervals that miss the true
time, and a protocol built on them (commit wait) loses external consistency.

Sans-I/O: the wall clock and the monotonic clock are read through functions the caller passes
(the driver's Clock port), and times are integer nanoseconds since the Unix epoch, so that the
arithmetic is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000

DEFAULT_EPSILON_MS = 4.0  # TRUETIME_EPSILON_MS's default: Spanner's average
# Spanner's figures (§5.3): epsilon from about 1 to 7 ms over each 30 s poll interval.
SPANNER_LOW_MS = 1.0
SPANNER_HIGH_MS = 7.0
SPANNER_SYNC_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class TTInterval:
    """[earliest, latest], in nanoseconds since the epoch: the true time is in it."""

    earliest: int
    latest: int

    def __post_init__(self) -> None:
        if self.earliest > self.latest:
            raise ValueError(f"an interval's earliest {self.earliest} is after its latest "
                             f"{self.latest}")

    @property
    def width(self) -> int:
        """2 * epsilon, in nanoseconds."""
        return self.latest - self.earliest

    def contains(self, t: int) -> bool:
        return self.earliest <= t <= self.latest

    def after(self, t: int) -> bool:
        """Whether `t` has certainly passed: the earliest the true time can be is later."""
        return self.earliest > t

    def before(self, t: int) -> bool:
        """Whether `t` has certainly not arrived: the latest the true time can be is earlier."""
        return self.latest < t

    def wait_until_after(self, t: int) -> int:
        """How long (ns) until `after(t)` holds, if the clock keeps time: Spanner's commit
        wait for a commit timestamp `t`, 0 when it already holds."""
        return max(0, t - self.earliest + 1)


class Epsilon(Protocol):
    """The uncertainty bound, as a function of the node's monotonic time."""

    @property
    def low_ms(self) -> float:
        """The smallest epsilon this policy gives: the largest clock error it can cover."""
        ...

    def at(self, monotonic_seconds: float) -> int:
        """Epsilon in nanoseconds at this monotonic time."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FixedEpsilon:
    ms: float

    def __post_init__(self) -> None:
        if not self.ms >= 0:
            raise ValueError(f"epsilon is at least 0 ms, not {self.ms}")

    @property
    def low_ms(self) -> float:
        return self.ms

    def at(self, monotonic_seconds: float) -> int:
        return round(self.ms * NS_PER_MS)

    def describe(self) -> str:
        return f"{self.ms:g} ms"


@dataclass(frozen=True, slots=True)
class SawtoothEpsilon:
    """From `low_ms` right after a sync, rising linearly to `high_ms` just before the next,
    syncs every `period_seconds` of the node's monotonic time (the first at time 0)."""

    low_ms: float = SPANNER_LOW_MS
    high_ms: float = SPANNER_HIGH_MS
    period_seconds: float = SPANNER_SYNC_SECONDS

    def __post_init__(self) -> None:
        if not 0 <= self.low_ms <= self.high_ms:
            raise ValueError(f"a sawtooth goes from a low to a high epsilon, 0 <= low <= "
                             f"high, not {self.low_ms:g} to {self.high_ms:g} ms")
        if not self.period_seconds > 0:
            raise ValueError(f"a sync period is positive, not {self.period_seconds:g} s")

    def at(self, monotonic_seconds: float) -> int:
        phase = (monotonic_seconds % self.period_seconds) / self.period_seconds
        return round((self.low_ms + (self.high_ms - self.low_ms) * phase) * NS_PER_MS)

    def describe(self) -> str:
        return (f"sawtooth {self.low_ms:g}-{self.high_ms:g} ms over "
                f"{self.period_seconds:g} s")


DEFAULT_EPSILON = FixedEpsilon(DEFAULT_EPSILON_MS)

EPSILON_SYNTAX = ("a number of milliseconds (4), 'sawtooth' (Spanner's: 1 to 7 ms over 30 s) "
                  "or 'sawtooth:LOW:HIGH:PERIOD_S' (sawtooth:1:7:30)")


def parse_epsilon(text: str) -> Epsilon:
    """TRUETIME_EPSILON_MS: `4` (fixed), `sawtooth`, or `sawtooth:LOW:HIGH:PERIOD_S`; raises
    ValueError naming the accepted forms."""
    value = text.strip().lower()
    try:
        if value == "sawtooth":
            return SawtoothEpsilon()
        if value.startswith("sawtooth:"):
            parts = value.split(":")[1:]
            if len(parts) != 3:
                raise ValueError("expected three numbers after 'sawtooth:'")
            low, high, period = (float(part) for part in parts)
            return SawtoothEpsilon(low, high, period)
        return FixedEpsilon(float(value))
    except ValueError as error:
        raise ValueError(f"expected {EPSILON_SYNTAX}, got {text!r} ({error})") from None


class TrueTime:
    """One node's TrueTime, from its clocks: `wall_ns` (its wall clock, skew included) and
    `monotonic` (seconds, for the sawtooth's phase)."""

    def __init__(self, wall_ns: Callable[[], int], monotonic: Callable[[], float],
                 epsilon: Epsilon) -> None:
        self._wall_ns = wall_ns
        self._monotonic = monotonic
        self.epsilon = epsilon

    def epsilon_ns(self) -> int:
        """Epsilon now."""
        return self.epsilon.at(self._monotonic())

    def now(self) -> TTInterval:
        reading = self._wall_ns()
        epsilon = self.epsilon.at(self._monotonic())
        return TTInterval(reading - epsilon, reading + epsilon)

    def after(self, t: int) -> bool:
        return self.now().after(t)

    def before(self, t: int) -> bool:
        return self.now().before(t)
