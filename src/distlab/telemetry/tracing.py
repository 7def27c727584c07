"""Tracing: one tracer provider per process, and the gRPC interceptors that carry context.

Trace context crosses process boundaries through the OpenTelemetry gRPC interceptors: the
client interceptor injects W3C `traceparent` metadata and the server interceptor extracts it,
so a call from node 1 to node 2 shows as one trace with node 2's span a child of node 1's.
The interceptors are passed explicitly to every server and channel rather than installed by
monkey-patching grpc, so what is traced is visible in the code that builds the channel.

Which traces are recorded follows the OpenTelemetry convention, `OTEL_TRACES_SAMPLER` and
`OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`). The decision is taken where a
trace starts, in a client or at a node's first span of a request, and travels with the trace
context (the `sampled` flag of `traceparent`), so the parent-based samplers keep a trace whole
or drop it whole across every process it touches.

A process that exports no spans never loads the SDK or the gRPC instrumentation (nor, from
here, gRPC itself): they are the largest part of a short-lived process's start-up, and such a
process records nothing.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import trace

import distlab
from distlab.wire.addresses import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

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

    @property
    def follows_parents(self) -> bool:
        """Whether a span's sampling follows its parent's (every parent-based sampler this
        module builds drops the children of a parent that was not sampled)."""
        if not self.exporting:
            return False
        from opentelemetry.sdk.trace.sampling import ParentBased

        return isinstance(cast("SdkTracerProvider", self.provider).sampler, ParentBased)

    def server_interceptors(self) -> Sequence[Any]:
        if not self.exporting:
            return []
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        from distlab.telemetry._unsampled import UnsampledServerFastPath

        traced = aio_server_interceptor(tracer_provider=self.provider, filter_=_traced_calls())
        return [UnsampledServerFastPath(traced) if self.follows_parents else traced]

    def client_interceptors(self) -> Sequence[Any]:
        """Interceptors for calls with a single request: unary calls and response streams.

        None for request streams. With any request-streaming interceptor on a channel, grpc
        sends every write of every such stream through a queue and a task of its own, whatever
        the interceptor then does: on a peer channel that is every Raft message, each costing
        half as much again in CPU and latency, traced or not. distlab's request streams are
        the peer `Stream` (never traced: its messages are) and snapshot `Transfer`, whose
        receiver's span then starts the trace.
        """
        if not self.exporting:
            return []
        import grpc
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        from distlab.telemetry._unsampled import UnsampledClientFastPath

        interceptors = [
            interceptor for interceptor in aio_client_interceptors(
                tracer_provider=self.provider, filter_=_traced_calls())
            if isinstance(interceptor, (grpc.aio.UnaryUnaryClientInterceptor,
                                        grpc.aio.UnaryStreamClientInterceptor))]
        if not self.follows_parents:
            return interceptors
        return [UnsampledClientFastPath(interceptor)
                if isinstance(interceptor, grpc.aio.UnaryUnaryClientInterceptor)
                else interceptor
                for interceptor in interceptors]

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

SAMPLER_VARIABLE = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG_VARIABLE = "OTEL_TRACES_SAMPLER_ARG"
DEFAULT_SAMPLER = "parentbased_always_on"
# The OpenTelemetry specification's built-in samplers, as the SDK names them.
FIXED_SAMPLERS = ("always_on", "always_off", "parentbased_always_on", "parentbased_always_off")
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
SAMPLERS = (*FIXED_SAMPLERS, *RATIO_SAMPLERS)


@dataclass(frozen=True, slots=True)
class SamplerSetting:
    """A checked reading of the sampler variables: the sampler's name and, for the ratio
    samplers, the ratio."""

    name: str
    ratio: float | None = None


def sampler_setting(env: Mapping[str, str]) -> SamplerSetting:
    """What `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` in `env` say, checked
    without loading the SDK.

    Empty counts as unset, and a ratio sampler without an argument samples everything, as in
    the SDK's own reading; but a value the SDK would only warn about and replace (an unknown
    name, a ratio that is not a number in [0, 1]) raises ConfigError here instead: a typo must
    not turn 10% sampling into 100% without anyone noticing.
    """
    name = (env.get(SAMPLER_VARIABLE) or "").strip().lower() or DEFAULT_SAMPLER
    argument = (env.get(SAMPLER_ARG_VARIABLE) or "").strip()
    if name in FIXED_SAMPLERS:
        return SamplerSetting(name)
    if name not in RATIO_SAMPLERS:
        raise ConfigError(f"{SAMPLER_VARIABLE}: expected one of {', '.join(SAMPLERS)}, "
                          f"got {env[SAMPLER_VARIABLE]!r}")
    if not argument:
        return SamplerSetting(name, 1.0)
    try:
        ratio = float(argument)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"{SAMPLER_ARG_VARIABLE}: {name} takes a ratio from 0 to 1, "
                          f"got {env[SAMPLER_ARG_VARIABLE]!r}")
    return SamplerSetting(name, ratio)


def sampler_from_environment(env: Mapping[str, str]) -> Sampler:
    """The SDK sampler the variables in `env` name (see `sampler_setting`): for every valid
    value, the one the SDK's own reading of them gives."""
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_OFF,
        ALWAYS_ON,
        DEFAULT_OFF,
        DEFAULT_ON,
        ParentBasedTraceIdRatio,
        TraceIdRatioBased,
    )

    setting = sampler_setting(env)
    fixed: dict[str, Sampler] = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF,
                                 "parentbased_always_on": DEFAULT_ON,
                                 "parentbased_always_off": DEFAULT_OFF}
    if setting.ratio is None:
        return fixed[setting.name]
    if setting.name == "traceidratio":
        return TraceIdRatioBased(setting.ratio)
    return ParentBasedTraceIdRatio(setting.ratio)


def setup_tracing(service_name: str, otlp_endpoint: str | None,
                  env: Mapping[str, str] | None = None) -> Tracing:
    """A tracer provider for `service_name`, exporting over OTLP/gRPC only when an endpoint is set.

    Without an endpoint there is no exporter and no interceptors, and spans are not recorded:
    tracing costs nothing (it is a large share of each call's CPU otherwise) and nothing
    retries against an absent collector. Every process of a traced cluster gets an endpoint.
    With one, `env` (the process's environment by default) chooses the sampler; its sampler
    variables are checked either way, so a bad value is a ConfigError before anything starts.
    The provider also becomes the global one, so library code using `trace.get_tracer` joins in.
    """
    env = os.environ if env is None else env
    if not otlp_endpoint:
        sampler_setting(env)
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

    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_VERSION: distlab.__version__})
    provider = TracerProvider(resource=resource, sampler=sampler_from_environment(env))
    endpoint = otlp_endpoint.removeprefix("http://")
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MILLIS)
    )
    trace.set_tracer_provider(provider)
    return Tracing(provider=provider, exporting=True)


CLIENT_SERVICE_NAME = "distlab-client"
OTLP_ENDPOINT_VARIABLE = "OTLP_ENDPOINT"


def client_tracing(env: Mapping[str, str] | None = None) -> Tracing | None:
    """A client process's tracing: exporting to `OTLP_ENDPOINT` when `env` (the process's
    environment by default) sets it, else None and nothing traced. A client's spans are the
    roots of the traces it starts, so its sampler is the one that decides for them.

    Raises ConfigError for a bad sampler variable, endpoint or not.
    """
    env = os.environ if env is None else env
    endpoint = (env.get(OTLP_ENDPOINT_VARIABLE) or "").strip() or None
    if endpoint is None:
        sampler_setting(env)
        return None
    return setup_tracing(CLIENT_SERVICE_NAME, endpoint, env)
