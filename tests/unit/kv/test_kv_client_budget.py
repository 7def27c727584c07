"""Every KVClient operation ends within its budget, whatever the members do: a member that
accepts connections and never answers, one that never finishes a read, NOT_LEADER hints to
a dead or silent address or round in a circle, and a call whose completion never reaches
the client at all (gRPC's own deadline does not end the await then; the client must)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
import pytest

from distlab.apps.kv import KVStateMachine
from distlab.client import Indefinite, KVClient, KVError, Unavailable
from distlab.client._deadlines import CallOverran, bounded
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import kv_pb2_grpc
from distlab.wire.not_leader import encode_not_leader
from tests.unit.kv.kv_harness import (
    FollowerLog,
    SingleMemberLog,
    StuckLog,
    grouped_node,
    kv_server,
)

CALL_TIMEOUT = 0.1
BUDGET = 0.4
# Far beyond budget + the client's grace: reaching it means the operation hung.
HANG_SECONDS = 10.0


async def failure_of(operation: Awaitable[object]) -> KVError:
    """The failure `operation` ends with; the test fails if it succeeds or never ends."""
    try:
        async with asyncio.timeout(HANG_SECONDS):
            await operation
    except KVError as error:
        return error
    except TimeoutError:
        pytest.fail(f"the operation did not end within {HANG_SECONDS:g} s "
                    f"(its budget is {BUDGET:g} s)")
    pytest.fail("the operation succeeded against members that cannot serve it")


def budgeted(cluster: Any) -> KVClient:
    return KVClient(cluster, call_timeout=CALL_TIMEOUT, operation_timeout=BUDGET)


class WithheldCompletion(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Calls to the methods named `methods` never complete for the caller, as when a
    completion is lost between gRPC's core and the event loop; other calls go through."""

    def __init__(self, *methods: str) -> None:
        self._methods = tuple(f"/{method}".encode() for method in methods)
        self.withheld = 0

    async def intercept_unary_unary(self, continuation: Callable[..., Any],
                                    client_call_details: Any, request: Any) -> Any:
        method = client_call_details.method
        if (method if isinstance(method, bytes) else method.encode()).endswith(self._methods):
            self.withheld += 1
            await asyncio.Event().wait()
        return await continuation(client_call_details, request)


@contextmanager
def silent_listener() -> Iterator[str]:
    """An address whose connections the kernel accepts and nobody ever answers (a paused
    or wedged process keeps its listening socket open just so)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


async def test_a_get_whose_completion_never_arrives_ends_within_its_budget() -> None:
    machine = KVStateMachine()
    withheld = WithheldCompletion("Get")
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            KVClient([address], call_timeout=CALL_TIMEOUT, operation_timeout=BUDGET,
                     interceptors=[withheld]) as client:
        error = await failure_of(client.get("k"))
    assert isinstance(error, Unavailable)  # a read changes nothing
    assert "did not answer" in str(error)
    assert withheld.withheld >= 1
    # Never expected of gRPC, so counted for the caller to report.
    assert client.overrun_calls == withheld.withheld
    assert client.last_overrun is not None and address in client.last_overrun


async def test_a_write_whose_completion_never_arrives_is_indefinite_within_its_budget() -> None:
    machine = KVStateMachine()
    withheld = WithheldCompletion("Put")  # the session opens; the write itself never returns
    async with kv_server(SingleMemberLog(machine), machine) as address, \
            KVClient([address], call_timeout=CALL_TIMEOUT, operation_timeout=BUDGET,
                     interceptors=[withheld]) as client:
        error = await failure_of(client.put("k", "v"))
    assert isinstance(error, Indefinite)  # the request may have reached the member
    assert "did not answer" in str(error)


async def test_a_group_count_probe_whose_completion_never_arrives_ends_within_the_budget(
) -> None:
    machine = KVStateMachine()
    withheld = WithheldCompletion("Status")
    async with grouped_node(1, [SingleMemberLog(machine)], [machine]) as (address, _), \
            KVClient([address], call_timeout=CALL_TIMEOUT, operation_timeout=BUDGET,
                     interceptors=[withheld]) as client:
        error = await failure_of(client.get("k"))
    assert isinstance(error, Unavailable)
    assert "no outcome within" in str(error)
    assert withheld.withheld >= 1


@pytest.mark.parametrize("operation", ["get", "put"])
async def test_a_member_that_accepts_and_never_answers(operation: str) -> None:
    with silent_listener() as address:
        async with budgeted([address]) as client:
            call = client.get("k") if operation == "get" else client.put("k", "v")
            error = await failure_of(call)
    # No HTTP/2 handshake ever completed, so no request was sent: a definite failure.
    assert isinstance(error, Unavailable)


async def test_a_read_the_member_never_finishes_ends_within_its_budget() -> None:
    machine = KVStateMachine()
    async with kv_server(StuckLog(SingleMemberLog(machine), commits=0), machine) as address, \
            budgeted([address]) as client:
        error = await failure_of(client.get("k"))
    assert isinstance(error, Unavailable)
    assert "DEADLINE_EXCEEDED" in str(error)


@pytest.mark.parametrize("leader", ["refuses connections", "accepts and never answers"])
async def test_a_leader_hint_to_an_unusable_address(leader: str) -> None:
    with silent_listener() as silent:
        dead = f"127.0.0.1:{free_loopback_ports(1)[0]}"
        hinted = dead if leader == "refuses connections" else silent
        follower = FollowerLog(leader_id=2, leader_address=hinted)
        async with kv_server(follower, KVStateMachine()) as address, \
                budgeted([address]) as client:
            for operation in (client.get("k"), client.put("k", "v")):
                error = await failure_of(operation)
                assert isinstance(error, Unavailable)
                assert client.leader_address in (hinted, address)
    assert follower.calls >= 2


class PointsElsewhere(kv_pb2_grpc.KVServicer):
    """A member that refuses every request naming another member as the leader."""

    def __init__(self, leader_id: int) -> None:
        self.leader_id = leader_id
        self.leader_address = ""
        self.calls = 0

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.calls += 1
        refusal = encode_not_leader(self.leader_id, self.leader_address, 0)
        await context.abort(refusal.code, refusal.details, refusal.trailing_metadata)

    async def Get(self, request: Any, context: Any) -> Any:
        await self._refuse(context)

    async def OpenSession(self, request: Any, context: Any) -> Any:
        await self._refuse(context)


@asynccontextmanager
async def serving(servicer: kv_pb2_grpc.KVServicer) -> AsyncIterator[str]:
    server = grpc.aio.server()
    kv_pb2_grpc.add_KVServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_members_that_name_each_other_as_leader() -> None:
    first, second = PointsElsewhere(leader_id=2), PointsElsewhere(leader_id=1)
    async with serving(first) as first_address, serving(second) as second_address:
        first.leader_address, second.leader_address = second_address, first_address
        async with budgeted({1: first_address, 2: second_address}) as client:
            for operation in (client.get("k"), client.put("k", "v")):
                error = await failure_of(operation)
                assert isinstance(error, Unavailable)
                assert "not the leader" in str(error)
    # The circle was followed, and paused on: not a busy loop for the whole budget.
    assert first.calls >= 1 and second.calls >= 1


async def test_only_the_bound_itself_counts_as_an_overrun() -> None:
    async def times_out_by_itself() -> None:
        raise TimeoutError("the call's own")

    with pytest.raises(TimeoutError, match="the call's own"):
        await bounded(times_out_by_itself(), 1.0)
    with pytest.raises(CallOverran, match=r"no answer within 0\.01 s"):
        await bounded(asyncio.Event().wait(), 0.01, grace=0.01)
    assert await bounded(asyncio.sleep(0, "answer"), 0.01, grace=0.01) == "answer"
