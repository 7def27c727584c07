"""The KV gRPC service over a replicated log: answers, status codes, trailing metadata."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from distlab.apps import kv
from distlab.apps.kv import KVStateMachine
from distlab.proto import kv_pb2, kv_pb2_grpc
from distlab.wire.channels import open_channel
from tests.unit.kv.kv_harness import FollowerLog, LosesLeadershipLog, SingleMemberLog, kv_server

CLIENT = 41


async def call_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def trailers(error: grpc.aio.AioRpcError) -> dict[str, str]:
    return {key: str(value) for key, value in error.trailing_metadata() or ()}


def requests_counted(op: str, code: str) -> float:
    return REGISTRY.get_sample_value("distlab_kv_requests_total", {"op": op, "code": code}) or 0.0


async def test_writes_and_reads_go_through_the_log() -> None:
    machine = KVStateMachine()
    log = SingleMemberLog(machine)
    async with kv_server(log, machine) as address, open_channel(address) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        assert not (await stub.Get(kv_pb2.GetRequest(key=b"k"), timeout=5)).found
        await stub.OpenSession(kv_pb2.OpenSessionRequest(client_id=CLIENT), timeout=5)
        await stub.Put(kv_pb2.PutRequest(client_id=CLIENT, sequence=1, key=b"k", value=b"a"),
                       timeout=5)
        await stub.Append(kv_pb2.AppendRequest(client_id=CLIENT, sequence=2, key=b"k", value=b"b"),
                          timeout=5)
        got = await stub.Get(kv_pb2.GetRequest(key=b"k"), timeout=5)
        assert (got.found, got.value) == (True, b"ab")

        mismatch = await stub.CompareAndSet(kv_pb2.CompareAndSetRequest(
            client_id=CLIENT, sequence=3, key=b"k", expected=b"zz", value=b"c"), timeout=5)
        assert not mismatch.ok
        match = await stub.CompareAndSet(kv_pb2.CompareAndSetRequest(
            client_id=CLIENT, sequence=4, key=b"k", expected=b"ab", value=b"c"), timeout=5)
        assert match.ok
        absent = await stub.CompareAndSet(kv_pb2.CompareAndSetRequest(
            client_id=CLIENT, sequence=5, key=b"new", value=b"n"), timeout=5)
        assert absent.ok and machine.get(b"new") == b"n"

        assert (await stub.Delete(kv_pb2.DeleteRequest(
            client_id=CLIENT, sequence=6, key=b"k"), timeout=5)).found
        assert not (await stub.Delete(kv_pb2.DeleteRequest(
            client_id=CLIENT, sequence=7, key=b"k"), timeout=5)).found
    assert len(log.entries) == 8  # the session and seven writes; reads add no entries
    assert log.read_barriers == 2


async def test_a_retried_write_is_answered_without_applying_it_again() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            open_channel(address) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        await stub.OpenSession(kv_pb2.OpenSessionRequest(client_id=CLIENT), timeout=5)
        request = kv_pb2.AppendRequest(client_id=CLIENT, sequence=1, key=b"k", value=b"x")
        await stub.Append(request, timeout=5)
        await stub.Append(request, timeout=5)
    assert machine.get(b"k") == b"x"


async def test_not_leader_names_the_leader_in_trailing_metadata() -> None:
    before = requests_counted("put", "FAILED_PRECONDITION")
    follower = FollowerLog(leader_id=3, leader_address="10.0.0.3:7000")
    async with kv_server(follower, KVStateMachine()) as address, \
            open_channel(address) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        error = await call_error(stub.Put(
            kv_pb2.PutRequest(client_id=CLIENT, sequence=1, key=b"k", value=b"v"), timeout=5))
        read_error = await call_error(stub.Get(kv_pb2.GetRequest(key=b"k"), timeout=5))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not the leader" in (error.details() or "")
    assert trailers(error) == {"error-reason": "not-leader", "group": "0", "leader-id": "3",
                               "leader-address": "10.0.0.3:7000"}
    assert read_error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert requests_counted("put", "FAILED_PRECONDITION") == before + 1


async def test_not_leader_without_a_known_leader_has_no_leader_metadata() -> None:
    async with kv_server(FollowerLog(None, None), KVStateMachine()) as address, \
            open_channel(address) as channel:
        error = await call_error(kv_pb2_grpc.KVStub(channel).Get(
            kv_pb2.GetRequest(key=b"k"), timeout=5))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailers(error) == {"error-reason": "not-leader", "group": "0"}


async def test_outcome_unknown_is_unavailable() -> None:
    machine = KVStateMachine()
    log = LosesLeadershipLog(SingleMemberLog(machine), failures=1)
    async with kv_server(log, machine) as address, open_channel(address) as channel:
        error = await call_error(kv_pb2_grpc.KVStub(channel).OpenSession(
            kv_pb2.OpenSessionRequest(client_id=CLIENT), timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert trailers(error) == {"error-reason": "outcome-unknown"}
    # It was in fact applied: that is what "unknown" allows.
    assert machine.last_sequence(CLIENT) == 0


@pytest.mark.parametrize(
    ("request_kind", "fields", "message"),
    [
        ("put", {"client_id": CLIENT, "sequence": 1, "key": b"", "value": b"v"}, "empty"),
        ("put", {"client_id": CLIENT, "sequence": 1, "key": b"k",
                 "value": b"x" * (kv.MAX_VALUE_BYTES + 1)},
         "value is 1048577 bytes, above the limit of 1048576 bytes (1 MiB)"),
        ("put", {"client_id": CLIENT, "sequence": 1, "key": b"k" * (kv.MAX_KEY_BYTES + 1),
                 "value": b"v"}, "key is longer"),
        ("put", {"client_id": 0, "sequence": 1, "key": b"k", "value": b"v"}, "client_id"),
        ("append", {"client_id": CLIENT, "sequence": 0, "key": b"k", "value": b"v"}, "sequence"),
        ("get", {"key": b""}, "empty"),
    ],
)
async def test_invalid_requests_are_refused_before_the_log(
    request_kind: str, fields: dict[str, object], message: str
) -> None:
    machine = KVStateMachine()
    log = SingleMemberLog(machine)
    async with kv_server(log, machine) as address, open_channel(address) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        call = {
            "put": lambda: stub.Put(kv_pb2.PutRequest(**fields), timeout=5),
            "append": lambda: stub.Append(kv_pb2.AppendRequest(**fields), timeout=5),
            "get": lambda: stub.Get(kv_pb2.GetRequest(**fields), timeout=5),
        }[request_kind]
        error = await call_error(call())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (error.details() or "")
    assert log.entries == []


async def test_an_unknown_session_is_aborted_and_a_stale_sequence_too() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            open_channel(address) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        expired = await call_error(stub.Put(
            kv_pb2.PutRequest(client_id=CLIENT, sequence=1, key=b"k", value=b"v"), timeout=5))
        await stub.OpenSession(kv_pb2.OpenSessionRequest(client_id=CLIENT), timeout=5)
        for sequence in (1, 2):
            await stub.Put(kv_pb2.PutRequest(
                client_id=CLIENT, sequence=sequence, key=b"k", value=b"v"), timeout=5)
        stale = await call_error(stub.Put(
            kv_pb2.PutRequest(client_id=CLIENT, sequence=1, key=b"k", value=b"v"), timeout=5))
    assert expired.code() == grpc.StatusCode.ABORTED
    assert trailers(expired) == {"error-reason": "session-expired"}
    assert stale.code() == grpc.StatusCode.ABORTED
    assert trailers(stale) == {"error-reason": "stale-sequence"}


async def test_an_append_past_the_limit_is_a_failed_precondition() -> None:
    machine = KVStateMachine()
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            open_channel(address) as channel:
        stub = kv_pb2_grpc.KVStub(channel)
        await stub.OpenSession(kv_pb2.OpenSessionRequest(client_id=CLIENT), timeout=5)
        half = b"x" * (kv.MAX_VALUE_BYTES // 2 + 1)
        await stub.Append(kv_pb2.AppendRequest(
            client_id=CLIENT, sequence=1, key=b"k", value=half), timeout=5)
        error = await call_error(stub.Append(kv_pb2.AppendRequest(
            client_id=CLIENT, sequence=2, key=b"k", value=half), timeout=5))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailers(error) == {"error-reason": "value-too-large"}
    assert machine.get(b"k") == half


async def test_the_server_span_names_the_operation_and_key() -> None:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    machine = KVStateMachine()
    interceptor = aio_server_interceptor(tracer_provider=provider)
    async with kv_server(SingleMemberLog(machine), machine, [interceptor]) as address, \
            open_channel(address) as channel:
        await kv_pb2_grpc.KVStub(channel).Get(kv_pb2.GetRequest(key=b"traced"), timeout=5)
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert (span.attributes["kv.op"], span.attributes["kv.key"]) == ("get", "traced")
