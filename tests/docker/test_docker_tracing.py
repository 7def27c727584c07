"""Traces across containers: one client write is one trace over the leader and its followers.

An OTLP receiver runs as one more container of the compose network (the distlab image has
grpcio and the OTLP protobufs), standing in for Jaeger; it prints each span as a JSON line,
which the test reads back from its log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from distlab.client import KVClient
from distlab.ops.status import wait_for_leader
from distlab.telemetry.receiver import SPAN_KIND_SERVER, ReceivedSpan
from tests.docker.conftest import ComposeProject
from tests.support import wait_for
from tests.support_otlp import assert_followers_received

pytestmark = pytest.mark.docker

SINK_SOURCE = Path(__file__).with_name("otlp_sink.py")


def sink_override(directory: Path) -> Path:
    """A compose file adding the `otlp-sink` service; its code travels in the command line,
    so nothing needs mounting from the host."""
    code = SINK_SOURCE.read_text()
    assert "$" not in code  # compose would substitute it
    service = {
        "services": {
            "otlp-sink": {
                "image": "${DISTLAB_IMAGE}",
                "entrypoint": ["python3", "-c", code],
                "init": True,
                "healthcheck": {"disable": True},
            },
        },
    }
    path = directory / "docker-compose.otlp-sink.yml"
    path.write_text(json.dumps(service, indent=2))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def traced(make_project: Callable[..., ComposeProject],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeProject]:
    override = sink_override(tmp_path_factory.mktemp("compose"))
    project = make_project("traces", overrides=[override],
                           env={"OTLP_ENDPOINT": "otlp-sink:4317"})
    project.up("otlp-sink")
    sink = project.container("otlp-sink")
    wait_for(lambda: "listening" in project.docker("logs", sink), timeout=60,
             what="the OTLP sink to listen")
    project.up("node1", "node2", "node3")
    yield project


def received(project: ComposeProject) -> list[ReceivedSpan]:
    spans = []
    for line in project.docker("logs", project.container("otlp-sink")).splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "span_id" not in record:
            continue
        spans.append(ReceivedSpan(
            service=record["service"], name=record["name"], kind=record["kind"],
            trace_id=bytes.fromhex(record["trace_id"]), span_id=bytes.fromhex(record["span_id"]),
            parent_span_id=bytes.fromhex(record["parent_span_id"]),
            attributes=record["attributes"],
        ))
    return spans


def test_a_write_is_one_trace_across_containers(traced: ComposeProject) -> None:
    nodes = traced.nodes

    async def write() -> None:
        await wait_for_leader(nodes, timeout=90)
        async with KVClient(nodes, call_timeout=2.0, operation_timeout=30.0) as client:
            # The first write also opens the client's session (a log entry of its own, in its
            # own trace); the write that follows is the one whose trace is checked.
            await client.put("warm-up", "value")
            await client.put("traced-in-docker", "value")

    asyncio.run(write())

    def write_spans() -> list[ReceivedSpan] | None:
        spans = received(traced)
        puts = [s for s in spans if s.name == "/distlab.v1.KV/Put" and s.kind == SPAN_KIND_SERVER
                and s.attributes.get("kv.key") == "traced-in-docker"]
        if not puts:
            return None
        trace = [s for s in spans if s.trace_id == puts[-1].trace_id]
        followers = {s.service for s in trace
                     if s.name == "raft.receive"}
        return trace if followers else None

    spans = wait_for(write_spans, timeout=30, what="the write's spans from leader and followers")
    put = next(s for s in spans if s.name == "/distlab.v1.KV/Put" and s.kind == SPAN_KIND_SERVER)
    leader = put.service
    proposes = [s for s in spans if s.name == "raft.propose"]
    assert len(proposes) == 1, proposes
    assert proposes[0].parent_span_id == put.span_id
    assert proposes[0].service == leader
    assert proposes[0].attributes["raft.index"] > 0
    # Parent links cross containers: follower's receive span <- leader's send span.
    assert_followers_received(spans, proposes[0], {f"node-{n}" for n in nodes})
