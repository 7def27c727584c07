"""Sampling follows OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, and a bad value is a
one-line configuration error (exit status 2), never a silent fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from distlab.cli import main
from distlab.runtime.config import load_node_config
from distlab.telemetry.tracing import client_tracing, sampler_from_environment, setup_tracing
from distlab.wire.addresses import ConfigError

VALID = [
    {},
    {"OTEL_TRACES_SAMPLER": "always_on"},
    {"OTEL_TRACES_SAMPLER": "always_off"},
    {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    {"OTEL_TRACES_SAMPLER": "parentbased_always_off"},
    {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"},
    {"OTEL_TRACES_SAMPLER": "TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "1"},
]

BAD = [
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER: expected one of"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"},
     "OTEL_TRACES_SAMPLER_ARG: traceidratio takes a ratio from 0 to 1, got '10%'"),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
     "OTEL_TRACES_SAMPLER_ARG: parentbased_traceidratio takes a ratio from 0 to 1"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "nan"},
     "OTEL_TRACES_SAMPLER_ARG"),
]


@pytest.mark.parametrize("env", VALID)
def test_each_valid_value_gives_the_sampler_the_sdk_reads_from_it(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    sdk_choice = TracerProvider().sampler  # without a sampler, the SDK reads the environment
    assert sampler_from_environment(env).get_description() == sdk_choice.get_description()


@pytest.mark.parametrize(("env", "message"), BAD)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        sampler_from_environment(env)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def recorded(env: dict[str, str], parent: trace.Span | None = None, spans: int = 200
             ) -> int:
    """How many of `spans` spans, started under `parent` (roots when None), reach an exporter
    under the sampler `env` names."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler_from_environment(env))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(__name__)
    context = trace.set_span_in_context(parent) if parent is not None else None
    for _ in range(spans):
        tracer.start_span("operation", context=context).end()
    provider.shutdown()
    return len(exporter.get_finished_spans())


def remote_parent(sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True,
                                        trace_flags=flags))


def test_always_off_and_a_zero_ratio_record_nothing_and_always_on_records_everything() -> None:
    assert recorded({"OTEL_TRACES_SAMPLER": "always_off"}) == 0
    assert recorded({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}) == 0
    assert recorded({"OTEL_TRACES_SAMPLER": "always_on"}) == 200
    assert recorded({}) == 200


def test_a_ratio_keeps_about_that_share_of_root_spans() -> None:
    kept = recorded({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                     "OTEL_TRACES_SAMPLER_ARG": "0.1"}, spans=4000)
    assert 250 < kept < 550  # 400 expected; the bounds are over 7 standard deviations away


def test_parent_based_samplers_follow_the_decision_of_the_trace_s_root() -> None:
    """A node's span under a client's call keeps the client's decision, whatever the ratio."""
    none_at_root = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0"}
    assert recorded(none_at_root, remote_parent(sampled=True)) == 200
    assert recorded({}, remote_parent(sampled=False)) == 0


@pytest.fixture
def no_global_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """setup_tracing makes its provider the process's global one, which can be set only once;
    these tests keep the global one as it is."""
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: None)
    yield


@pytest.mark.usefixtures("no_global_provider")
def test_setup_tracing_samples_as_the_environment_says_only_when_exporting() -> None:
    exporting = setup_tracing("node-1", "127.0.0.1:4317",
                              {"OTEL_TRACES_SAMPLER": "traceidratio",
                               "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    try:
        assert exporting.provider.sampler.get_description() == "TraceIdRatioBased{0.5}"
    finally:
        exporting.shutdown()
    silent = setup_tracing("node-1", None, {"OTEL_TRACES_SAMPLER": "always_on"})
    assert not silent.tracer(__name__).start_span("nobody exports this").is_recording()
    assert silent.client_interceptors() == [] and silent.server_interceptors() == []


@pytest.mark.usefixtures("no_global_provider")
def test_bad_sampler_values_fail_at_start_up_even_without_an_endpoint() -> None:
    bad = {"OTEL_TRACES_SAMPLER": "sometimes"}
    with pytest.raises(ConfigError):
        setup_tracing("node-1", None, bad)
    with pytest.raises(ConfigError):
        client_tracing(bad)
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER"):
        load_node_config({"NODE_ID": "1", "CLUSTER_NODES": "1", **bad})


@pytest.mark.parametrize("argv", [
    ["node", "--node-id", "1", "--cluster-nodes", "1=127.0.0.1:1"],
    ["kv", "get", "k", "--cluster", "127.0.0.1:1"],
    ["bench", "kv", "--cluster", "127.0.0.1:1"],
])
def test_commands_exit_2_with_one_line(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "ten percent")
    monkeypatch.delenv("OTLP_ENDPOINT", raising=False)
    assert main.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "OTEL_TRACES_SAMPLER_ARG: parentbased_traceidratio takes a ratio from 0 to 1" in error
