"""TrueTime's metrics: the uncertainty a node claims now, and how long commits wait it out.

`distlab_truetime_epsilon_seconds` is read from the node's TrueTime at scrape time (with a
sawtooth epsilon it changes between scrapes). `distlab_truetime_commit_wait_seconds` is for
the transactions that wait until their commit timestamp has certainly passed (Spanner's
commit wait): they observe each wait on it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from distlab.core.truetime import NS_PER_SECOND, TrueTime

COMMIT_WAIT = Histogram(
    "distlab_truetime_commit_wait_seconds",
    "How long a commit waited until TrueTime said its timestamp had passed (TT.after).",
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.05, 0.1),
)


class TrueTimeCollector(Collector):
    """Exposes `distlab_truetime_epsilon_seconds` and the injected skew of one node."""

    def __init__(self, truetime: TrueTime, skew_ns: int) -> None:
        self._truetime = truetime
        self._skew_ns = skew_ns

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "distlab_truetime_epsilon_seconds",
            "TrueTime's uncertainty bound on this node now: TT.now() is the clock's reading "
            "plus or minus this.",
            value=self._truetime.epsilon_ns() / NS_PER_SECOND)
        yield GaugeMetricFamily(
            "distlab_truetime_clock_skew_seconds",
            "The offset injected into this node's wall clock (CLOCK_SKEW_MS).",
            value=self._skew_ns / NS_PER_SECOND)
