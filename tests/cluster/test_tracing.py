"""One ClusterStatus call to node 1, which calls node 2, is one trace across both processes;
so are a write and a transaction over groups, across every node they touch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from distlab.client import KVClient, TxnClient
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.telemetry.receiver import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    OtlpReceiver,
    ReceivedSpan,
)
from distlab.wire.status import group_statuses
from tests.support import UpProcess, first_transaction, wait_for
from tests.support_otlp import assert_followers_received


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


def only(spans: list[ReceivedSpan], **match: object) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_cluster_status_is_one_trace_across_two_nodes(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=2, extra_env={"OTLP_ENDPOINT": receiver.endpoint})
    try:
        node1 = up.description()["nodes"][0]
        with grpc.insecure_channel(node1["address"]) as channel:
            reply = admin_pb2_grpc.AdminStub(channel).ClusterStatus(
                admin_pb2.ClusterStatusRequest(timeout_seconds=2.0), timeout=5
            )
        assert [member.up for member in reply.members] == [True, True]
    finally:
        # Stopping flushes every buffered span before the processes exit.
        assert up.stop() == 0

    def admin_spans() -> list[ReceivedSpan] | None:
        spans = [s for s in receiver.spans if s.name.startswith("/distlab.v1.Admin/")]
        return spans if len(spans) >= 3 else None

    spans = wait_for(admin_spans, timeout=10, what="the Admin spans of both nodes")
    root = only(spans, service="node-1", name="/distlab.v1.Admin/ClusterStatus",
                kind=SPAN_KIND_SERVER)
    call = only(spans, service="node-1", name="/distlab.v1.Admin/Status", kind=SPAN_KIND_CLIENT)
    served = only(spans, service="node-2", name="/distlab.v1.Admin/Status", kind=SPAN_KIND_SERVER)

    assert root.trace_id == call.trace_id == served.trace_id
    assert call.parent_span_id == root.span_id
    assert served.parent_span_id == call.span_id
    assert root.parent_span_id == b""  # the test's own call carried no trace context
    # Health probes from `distlab up` are not traced.
    assert not [s for s in receiver.spans if "Health" in s.name]


@pytest.mark.parametrize("engine", ["raft", "paxos"])
def test_a_write_is_one_trace_from_leader_to_followers(
    tmp_path: Path, receiver: OtlpReceiver, engine: str
) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=3, extra_env={"OTLP_ENDPOINT": receiver.endpoint},
                   extra_args=["--engine", engine])
    try:
        cluster = {node["id"]: node["address"] for node in up.description()["nodes"]}

        async def write() -> None:
            async with KVClient(cluster, operation_timeout=20) as client:
                # The first write also opens the client's session (a log entry in a trace of
                # its own); the write that follows is the one whose trace is checked.
                await client.put("warm-up", "value")
                await client.put("traced", "value")

        asyncio.run(write())
    finally:
        assert up.stop() == 0

    def write_spans() -> list[ReceivedSpan] | None:
        spans = receiver.spans
        # Each attempt of the client is a trace of its own: the one that was proposed is the
        # write's (an attempt at a member that was not leading, say during an election under
        # load, is refused without a proposal).
        proposed = {s.trace_id for s in spans if s.name == f"{engine}.propose"}
        put = [s for s in spans if s.name == "/distlab.v1.KV/Put" and s.kind == SPAN_KIND_SERVER
               and s.attributes.get("kv.key") == "traced" and s.trace_id in proposed]
        if not put:
            return None
        trace_spans = [s for s in spans if s.trace_id == put[-1].trace_id]
        followers = {s.service for s in trace_spans
                     if s.name == f"{engine}.receive"}
        return trace_spans if followers else None

    spans = wait_for(write_spans, timeout=10, what="the write's spans from every node")
    put = only(spans, name="/distlab.v1.KV/Put", kind=SPAN_KIND_SERVER)
    assert put.attributes["kv.key"] == "traced"
    propose = only(spans, name=f"{engine}.propose")
    assert propose.parent_span_id == put.span_id
    assert propose.service == put.service
    assert propose.attributes[f"{engine}.index"] > 0
    assert_followers_received(spans, propose, {f"node-{n}" for n in cluster}, engine)
    # The long-lived peer streams and the probes are not traced as calls.
    assert not [s for s in receiver.spans
                if s.name in ("/distlab.v1.Peer/Stream", "/distlab.v1.Peer/Probe")]


def test_a_transaction_over_groups_is_one_trace_with_its_phases(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=3, extra_env={"OTLP_ENDPOINT": receiver.endpoint},
                   extra_args=["--groups", "3"])
    try:
        cluster = {node["id"]: node["address"] for node in up.description()["nodes"]}

        def leaders() -> set[int] | None:
            with grpc.insecure_channel(cluster[1]) as channel:
                status = admin_pb2_grpc.AdminStub(channel).Status(admin_pb2.StatusRequest(),
                                                                  timeout=5)
            found = {group.leader_id for group in group_statuses(status)}
            return found if len(found - {0}) >= 2 else None

        # Leadership spread over two nodes or more, so that the transaction's messages cross
        # from one node to another.
        wait_for(leaders, timeout=30, what="group leaders on two nodes")

        async def transfer() -> int | None:
            client = TxnClient(cluster)
            try:
                result = await first_transaction(
                    client, [f"put:acct{index}=1" for index in range(6)], 20)
                assert result.outcome == "committed", result
                return result.ts
            finally:
                await client.close()

        ts = asyncio.run(transfer())
    finally:
        assert up.stop() == 0

    def txn_spans() -> list[ReceivedSpan] | None:
        spans = receiver.spans
        wait = [s for s in spans if s.name == "txn.commit_wait"]
        if not wait:
            return None
        return [s for s in spans if s.trace_id == wait[0].trace_id]

    spans = wait_for(txn_spans, timeout=10, what="the transaction's spans")
    transaction = only(spans, name="txn.transaction")
    prepare = only(spans, name="txn.prepare")
    wait = only(spans, name="txn.commit_wait")
    assert prepare.parent_span_id == wait.parent_span_id == transaction.span_id
    assert prepare.attributes["txn.decision"] == "commit"
    assert prepare.attributes["txn.ts"] == ts == transaction.attributes["txn.ts"]
    assert wait.attributes["txn.commit_ts"] == ts and wait.attributes["txn.commit_wait_ms"] >= 0
    # Its messages reach the other groups' leaders within the same trace.
    assert len({s.service for s in spans}) >= 2
