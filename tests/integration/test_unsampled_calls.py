"""Calls of a trace that is not sampled take the interceptors' short way: nothing recorded,
and the decision still travels to the server; sampled calls keep their client and server
spans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind

from distlab.ops.local_cluster import LOOPBACK
from distlab.telemetry._unsampled import (
    UnsampledClientFastPath,
    UnsampledServerFastPath,
    unsampled_parent,
    unsampled_traceparent,
)
from distlab.telemetry.tracing import Tracing, sampler_from_environment

METHOD = "/distlab.test.Echo/Call"


@dataclass
class Traced:
    tracing: Tracing
    exported: InMemorySpanExporter
    call: grpc.aio.UnaryUnaryMultiCallable
    seen_by_handler: list[SpanContext]


@pytest.fixture(params=[
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
    {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
], ids=["none-sampled", "all-sampled"])
async def traced(request: pytest.FixtureRequest) -> AsyncIterator[Traced]:
    """A server and a channel with the interceptors of a Tracing whose sampler `request`
    names, its spans exported to memory."""
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler_from_environment(request.param))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracing = Tracing(provider=provider, exporting=True)
    seen: list[SpanContext] = []

    async def answer(message: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        seen.append(trace.get_current_span().get_span_context())
        return message

    server = grpc.aio.server(interceptors=tracing.server_interceptors())
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "distlab.test.Echo", {"Call": grpc.unary_unary_rpc_method_handler(answer)}),))
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"{LOOPBACK}:{port}",
                                        interceptors=tracing.client_interceptors())
    try:
        yield Traced(tracing, exported, channel.unary_unary(METHOD), seen)
    finally:
        await channel.close()
        await server.stop(None)
        provider.shutdown()


async def test_the_handler_runs_in_the_callers_trace_and_keeps_its_decision(
        traced: Traced) -> None:
    root = traced.tracing.tracer(__name__).start_span("kv put")
    with trace.use_span(root, end_on_exit=True):
        assert await traced.call(b"ping", timeout=5) == b"ping"
    sampled = root.get_span_context().trace_flags.sampled
    [seen] = traced.seen_by_handler
    assert seen.trace_id == root.get_span_context().trace_id
    assert seen.trace_flags.sampled == sampled
    spans = {(span.name, span.kind): span for span in traced.exported.get_finished_spans()}
    if not sampled:
        assert spans == {}
        return
    client = spans[(METHOD, SpanKind.CLIENT)]
    server = spans[(METHOD, SpanKind.SERVER)]
    assert client.parent is not None and client.parent.span_id == root.get_span_context().span_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert seen.span_id == server.context.span_id


async def test_a_call_outside_any_trace_is_decided_by_the_sampler(traced: Traced) -> None:
    assert await traced.call(b"ping", timeout=5) == b"ping"
    kinds = sorted(span.kind.name for span in traced.exported.get_finished_spans())
    everything = traced.tracing.provider.sampler.get_description().startswith(
        "ParentBased{root:AlwaysOnSampler")
    assert kinds == (["CLIENT", "SERVER"] if everything else [])


def test_the_short_way_is_taken_only_under_parent_based_samplers() -> None:
    def interceptor_types(env: dict[str, str]) -> set[type]:
        tracing = Tracing(TracerProvider(sampler=sampler_from_environment(env)), exporting=True)
        return {type(i) for i in [*tracing.server_interceptors(),
                                  *tracing.client_interceptors()]}

    parent_based = interceptor_types({})
    assert {UnsampledClientFastPath, UnsampledServerFastPath} <= parent_based
    # always_on samples children of unsampled parents too: every call needs its span.
    ignoring_parents = interceptor_types({"OTEL_TRACES_SAMPLER": "always_on"})
    assert not {UnsampledClientFastPath, UnsampledServerFastPath} & ignoring_parents


def test_only_a_valid_unsampled_traceparent_takes_the_short_way() -> None:
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    unsampled = unsampled_parent((("user-agent", "x"),
                                  ("traceparent", f"00-{trace_id}-{span_id}-00")))
    assert unsampled is not None
    assert trace.get_current_span(unsampled).get_span_context().trace_id == int(trace_id, 16)
    assert unsampled_parent((("traceparent", f"00-{trace_id}-{span_id}-01"),)) is None
    assert unsampled_parent((("traceparent", f"00-{'0' * 32}-{span_id}-00"),)) is None
    assert unsampled_parent((("user-agent", "x"),)) is None

    provider = TracerProvider(sampler=sampler_from_environment(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}))
    assert unsampled_traceparent() is None  # no trace at all
    with provider.get_tracer(__name__).start_as_current_span("kv put") as span:
        context = span.get_span_context()
        assert unsampled_traceparent() == f"00-{context.trace_id:032x}-{context.span_id:016x}-00"
    with TracerProvider().get_tracer(__name__).start_as_current_span("kv put"):
        assert unsampled_traceparent() is None  # sampled: the full interceptor's work


def test_no_request_streaming_interceptor_slows_the_peer_streams() -> None:
    """grpc routes every write of a request stream through a queue of its own when such an
    interceptor is on the channel; the peer streams carry every Raft message."""
    for env in ({}, {"OTEL_TRACES_SAMPLER": "always_on"}):
        tracing = Tracing(TracerProvider(sampler=sampler_from_environment(env)), exporting=True)
        interceptors = tracing.client_interceptors()
        assert not [i for i in interceptors
                    if isinstance(i, (grpc.aio.StreamUnaryClientInterceptor,
                                      grpc.aio.StreamStreamClientInterceptor))]
        assert [i for i in interceptors if isinstance(i, grpc.aio.UnaryStreamClientInterceptor)]
