"""Tracing: one tracer provider per process, and the gRPC interceptors that carry context.

Trace context crosses process boundaries through the OpenTelemetry gRPC interceptors: the
client interceptor injects W3C `traceparent` metadata and the server interceptor extracts it,
so a call from node 1 to node 2 shows as one trace with node 2's span a child of node 1's.
The interceptors are passed explicitly to every server and channel rather than installed by
monkey-patching grpc, so what is traced is visible in the code that builds the channel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import trace

import distlab

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

log = logging.getLogger(__name__)

# Spans reach the collector within this long of ending; short, because a lab user watches
# traces while faults happen, and the batch still amortises export over many spans.
EXPORT_DELAY_MILLIS = 500


@dataclass(frozen=True, slots=True)
class Tracing:
    """The process's tracer provider and the interceptors built from it."""

    provider: trace.TracerProvider
    exporting: bool

    def tracer(self, name: str) -> trace.Tracer:
        # The version is read from the package metadata, which takes tens of milliseconds to
        # load: only spans that are exported carry it.
        return self.provider.get_tracer(name, distlab.__version__ if self.exporting else None)

    def server_interceptors(self) -> Sequence[Any]:
        if not self.exporting:
            return []
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        return [aio_server_interceptor(tracer_provider=self.provider, filter_=_traced_calls())]

    def client_interceptors(self) -> Sequence[Any]:
        if not self.exporting:
            return []
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        return list(aio_client_interceptors(tracer_provider=self.provider, filter_=_traced_calls()))

    def shutdown(self, timeout_millis: int = 1500) -> None:
        """Export every span still buffered, waiting at most `timeout_millis`."""
        if isinstance(self.provider, trace.NoOpTracerProvider):
            return
        provider = cast("SdkTracerProvider", self.provider)
        if not provider.force_flush(timeout_millis):
            log.warning("some spans were not exported within %d ms", timeout_millis)
        provider.shutdown()


def _traced_calls() -> Any:
    """Every call but health probes and the peer streams and probes. Probes run every
    second and would bury the spans a person is looking for; a peer stream lasts as long as
    the node, so a span of it says nothing (the transport traces the messages on it instead).

    The gRPC instrumentation is imported here and in the interceptor methods, only when spans
    are exported: it is the largest part of a process's start-up otherwise."""
    from opentelemetry.instrumentation.grpc.filters import (
        any_of,
        full_method_name,
        health_check,
        negate,
    )

    return negate(any_of(health_check(),
                         *(full_method_name(method) for method in UNTRACED_PEER_METHODS)))


UNTRACED_PEER_METHODS = ("/distlab.v1.Peer/Stream", "/distlab.v1.Peer/Probe")


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> Tracing:
    """A tracer provider for `service_name`, exporting over OTLP/gRPC only when an endpoint is set.

    Without an endpoint there is no exporter and no interceptors, and spans are not recorded:
    tracing costs nothing (it is a large share of each call's CPU otherwise) and nothing
    retries against an absent collector. Every process of a traced cluster gets an endpoint.
    The provider also becomes the global one, so library code using `trace.get_tracer` joins in.
    """
    if not otlp_endpoint:
        # The API's no-op provider: spans that record nothing and carry no context, without
        # loading the SDK, which is a noticeable part of a short-lived process's start-up.
        noop = trace.NoOpTracerProvider()
        trace.set_tracer_provider(noop)
        return Tracing(provider=noop, exporting=False)
    # Imported only when used: the exporter pulls in a second gRPC stack at import time.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_VERSION: distlab.__version__})
    provider = TracerProvider(resource=resource, sampler=ALWAYS_ON)
    endpoint = otlp_endpoint.removeprefix("http://")
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MILLIS)
    )
    trace.set_tracer_provider(provider)
    return Tracing(provider=provider, exporting=True)
