"""Prometheus metrics: the HTTP endpoint and the gauges read from a node's engine status.

Gauges that mirror state (term, leadership, indexes) are computed at scrape time from the
engine's status, so they can never drift from what Admin.Status reports. Counters and
histograms of events (leader changes, fsync latency) belong to the code that sees the events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from distlab.core.ids import NO_NODE
from distlab.core.status import EngineStatus


class EngineStatusCollector(Collector):
    """Exposes `distlab_raft_*` gauges from a function returning the engine's status."""

    def __init__(self, status: Callable[[], EngineStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._status()
        yield GaugeMetricFamily(
            "distlab_raft_has_leader",
            "Whether a leader is known to this node (1) or not (0).",
            value=float(status.leader_id != NO_NODE),
        )
        yield GaugeMetricFamily(
            "distlab_raft_is_leader",
            "Whether this node is the leader (1) or not (0).",
            value=float(status.role == "leader"),
        )
        yield GaugeMetricFamily("distlab_raft_term", "The node's current term.", value=status.term)
        yield GaugeMetricFamily(
            "distlab_raft_commit_index", "The highest log index known committed.",
            value=status.commit_index,
        )
        yield GaugeMetricFamily(
            "distlab_raft_applied_index", "The highest log index applied to the state machine.",
            value=status.applied_index,
        )


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
