"""Prometheus metrics: the HTTP endpoint and the gauges read from a node's engine status.

Gauges that mirror state (term, leadership, indexes) are computed at scrape time from the
engine's status, so they can never drift from what Admin.Status reports. Counters and
histograms of events (leader changes, fsync latency) belong to the code that sees the events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from distlab.core.ids import NO_NODE
from distlab.core.status import EngineStatus


class GroupStatusCollector(Collector):
    """Exposes `distlab_<engine>_*` gauges, one series per group, from a function returning
    every group's (index, status)."""

    def __init__(self, engine: str,
                 statuses: Callable[[], Sequence[tuple[int, EngineStatus]]]) -> None:
        self._prefix = f"distlab_{engine}"
        self._statuses = statuses

    def collect(self) -> Iterator[GaugeMetricFamily]:
        prefix = self._prefix
        families = {
            "has_leader": GaugeMetricFamily(
                f"{prefix}_has_leader", "Whether a leader is known to this node (1) or not (0).",
                labels=["group"]),
            "is_leader": GaugeMetricFamily(
                f"{prefix}_is_leader", "Whether this node is the leader (1) or not (0).",
                labels=["group"]),
            "term": GaugeMetricFamily(f"{prefix}_term", "The node's current term.",
                                      labels=["group"]),
            "commit": GaugeMetricFamily(
                f"{prefix}_commit_index", "The highest log index known committed.",
                labels=["group"]),
            "applied": GaugeMetricFamily(
                f"{prefix}_applied_index", "The highest log index applied to the state machine.",
                labels=["group"]),
        }
        for group, status in self._statuses():
            label = [str(group)]
            families["has_leader"].add_metric(label, float(status.leader_id != NO_NODE))
            families["is_leader"].add_metric(label, float(status.role == "leader"))
            families["term"].add_metric(label, status.term)
            families["commit"].add_metric(label, status.commit_index)
            families["applied"].add_metric(label, status.applied_index)
        yield from families.values()


@dataclass(slots=True)
class MetricsServer:
    """The `/metrics` HTTP endpoint, served from a daemon thread by prometheus-client."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=1.0)


def start_metrics_server(
    host: str, port: int, registry: CollectorRegistry = REGISTRY
) -> MetricsServer:
    """Serve `registry` (process metrics included by default) on http://host:port/metrics.

    Raises OSError when the address cannot be bound.
    """
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
