"""Tracing and metrics particular to MapReduce.

Workers poll the coordinator (RequestTask while idle, Heartbeat every half second); traced,
each poll would be a trace of its own and bury the one trace per job a person looks for. The
coordinator's server and the workers' coordinator channel therefore use interceptors that
skip those two methods (and health checks). Everything else, the fetches between workers
included, is traced with the interceptors of distlab.telemetry.tracing.

The gRPC instrumentation is imported only by a process that exports spans (see
distlab.telemetry.tracing); the coordinator's metrics are in distlab.runtime.mapreduce.metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from distlab.telemetry.tracing import Tracing

POLLING_METHODS = ("RequestTask", "Heartbeat")
_propagator = TraceContextTextMapPropagator()


def _not_polling() -> Any:
    from opentelemetry.instrumentation.grpc.filters import (
        any_of,
        health_check,
        method_name,
        negate,
    )

    return negate(any_of(health_check(), *(method_name(name) for name in POLLING_METHODS)))


def coordinator_server_interceptors(tracing: Tracing) -> Sequence[Any]:
    # Like Tracing's own: none when spans go nowhere, since an interceptor costs a large share
    # of each call's CPU even when its spans are not recorded.
    if not tracing.exporting:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=tracing.provider, filter_=_not_polling())]


def coordinator_client_interceptors(tracing: Tracing) -> Sequence[Any]:
    if not tracing.exporting:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=tracing.provider, filter_=_not_polling()))


def traceparent_of(span: trace.Span) -> str:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> context.Context:
    return _propagator.extract({"traceparent": traceparent} if traceparent else {})
