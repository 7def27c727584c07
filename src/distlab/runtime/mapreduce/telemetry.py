"""Tracing and metrics particular to MapReduce.

Workers poll the coordinator (RequestTask while idle, Heartbeat every half second); traced,
each poll would be a trace of its own and bury the one trace per job a person looks for. The
coordinator's server and the workers' coordinator channel therefore use interceptors that
skip those two methods (and health checks). Everything else, the fetches between workers
included, is traced with the interceptors of distlab.telemetry.tracing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, health_check, method_name, negate
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from distlab.protocols.mapreduce import Counters
from distlab.telemetry.tracing import Tracing

POLLING_METHODS = ("RequestTask", "Heartbeat")
_propagator = TraceContextTextMapPropagator()


def _not_polling() -> Any:
    return negate(any_of(health_check(), *(method_name(name) for name in POLLING_METHODS)))


def coordinator_server_interceptors(tracing: Tracing) -> Sequence[Any]:
    # Like Tracing's own: none when spans go nowhere, since an interceptor costs a large share
    # of each call's CPU even when its spans are not recorded.
    if not tracing.exporting:
        return []
    return [aio_server_interceptor(tracer_provider=tracing.provider, filter_=_not_polling())]


def coordinator_client_interceptors(tracing: Tracing) -> Sequence[Any]:
    if not tracing.exporting:
        return []
    return list(aio_client_interceptors(tracer_provider=tracing.provider, filter_=_not_polling()))


def traceparent_of(span: trace.Span) -> str:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> context.Context:
    return _propagator.extract({"traceparent": traceparent} if traceparent else {})


class TaskCounterCollector(Collector):
    """`distlab_mr_tasks_total{kind,state}` and worker/job gauges, read from the scheduler at
    scrape time so they cannot drift from it."""

    def __init__(self, counters: Callable[[], Counters], live_workers: Callable[[], int],
                 jobs_by_state: Callable[[], dict[str, int]]) -> None:
        self._counters = counters
        self._live_workers = live_workers
        self._jobs_by_state = jobs_by_state

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        tasks = CounterMetricFamily(
            "distlab_mr_tasks",
            "MapReduce task events: started, completed, failed, timed_out, worker_lost, "
            "abandoned, lost (map output lost), fetch_failed, backup, duplicate, stale.",
            labels=("kind", "state"),
        )
        for (kind, state), value in sorted(self._counters().by_kind_state.items()):
            tasks.add_metric((kind, state), value)
        yield tasks
        yield GaugeMetricFamily(
            "distlab_mr_workers_alive", "Workers heard from within the worker timeout.",
            value=self._live_workers(),
        )
        jobs = GaugeMetricFamily("distlab_mr_jobs", "Jobs by state.", labels=("state",))
        for state, count in sorted(self._jobs_by_state().items()):
            jobs.add_metric((state,), count)
        yield jobs
