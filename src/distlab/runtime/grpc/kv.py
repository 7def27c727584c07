"""The KV service: client requests in, replicated-log proposals and read barriers out.

Writes are encoded as state machine commands and proposed; the reply is built from the state
machine's result for that command. Reads wait for a read barrier, then read the local state.
Engine errors become the status codes of DESIGN §6, so a client can tell "did not happen"
(FAILED_PRECONDITION, INVALID_ARGUMENT) from "may have happened" (UNAVAILABLE,
DEADLINE_EXCEEDED), and where to go instead (the leader named in trailing metadata).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from opentelemetry import trace
from prometheus_client import Counter

from distlab.apps import kv
from distlab.apps.kv import KVStateMachine
from distlab.core.replicated_log import NotLeader, OutcomeUnknown, ReplicatedLog
from distlab.proto import kv_pb2, kv_pb2_grpc
from distlab.wire.kv_bytes import printable
from distlab.wire.metadata import (
    ERROR_REASON,
    REASON_OUTCOME_UNKNOWN,
    REASON_SESSION_EXPIRED,
    REASON_STALE_SEQUENCE,
    REASON_TIMED_OUT,
    REASON_VALUE_TOO_LARGE,
)
from distlab.wire.not_leader import encode_not_leader
from distlab.wire.sharding import group_of

# A request without a deadline still gets an answer when the cluster has no quorum.
DEFAULT_MAX_WAIT_SECONDS = 30.0

KV_REQUESTS = Counter(
    "distlab_kv_requests",
    "KV requests answered by this node, by operation and gRPC status code.",
    ["op", "code"],
)

# Label children by (op, code), looked up once each: labels() takes a lock and builds a key.
_REQUEST_COUNTERS: dict[tuple[str, str], Any] = {}


def count_request(op: str, code: str) -> None:
    counter = _REQUEST_COUNTERS.get((op, code))
    if counter is None:
        counter = _REQUEST_COUNTERS[(op, code)] = KV_REQUESTS.labels(op=op, code=code)
    counter.inc()


Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]


class Rejection(Exception):
    """A request answered with an error status; `metadata` goes in the trailers."""

    def __init__(
        self, code: grpc.StatusCode, message: str, metadata: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.metadata = metadata


def check_key(key: bytes) -> None:
    if not key:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "key must not be empty")
    if len(key) > kv.MAX_KEY_BYTES:
        raise Rejection(
            grpc.StatusCode.INVALID_ARGUMENT, f"key is longer than {kv.MAX_KEY_BYTES} bytes"
        )


def check_value(value: bytes, what: str = "value") -> None:
    if len(value) > kv.MAX_VALUE_BYTES:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, kv.value_too_large(what, len(value)))


def check_session(client_id: int, sequence: int) -> None:
    if client_id == 0:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT,
                        "client_id must be non-zero (open a session first)")
    if sequence == 0:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "sequence must be at least 1")


def not_leader_rejection(error: NotLeader, group: int = 0) -> Rejection:
    encoded = encode_not_leader(error.leader_id, error.leader_address, group)
    return Rejection(encoded.code, encoded.details, encoded.trailing_metadata)


def result_rejection(result: kv_pb2.KVResult) -> Rejection:
    """The status for a command the state machine answered without applying it."""
    status = result.status
    if status == kv.SESSION_EXPIRED:
        return Rejection(
            grpc.StatusCode.ABORTED,
            "the session is not registered (expired or never opened); an earlier attempt with "
            "this request id may have been applied",
            ((ERROR_REASON, REASON_SESSION_EXPIRED),),
        )
    if status == kv.STALE_SEQUENCE:
        return Rejection(
            grpc.StatusCode.ABORTED,
            "the sequence is older than the session's last; its outcome is no longer known",
            ((ERROR_REASON, REASON_STALE_SEQUENCE),),
        )
    if status == kv.VALUE_TOO_LARGE:
        return Rejection(grpc.StatusCode.FAILED_PRECONDITION, result.detail,
                         ((ERROR_REASON, REASON_VALUE_TOO_LARGE),))
    return Rejection(grpc.StatusCode.INVALID_ARGUMENT,
                     f"the store rejected the command: {result.detail or status}")


@dataclass(frozen=True, slots=True)
class Shard:
    """One group's replicated log and the KV state machine it applies to on this member:
    reads are served from `machine` after the log's read barrier."""

    log: ReplicatedLog
    machine: KVStateMachine


class KVServicer(kv_pb2_grpc.KVServicer):
    """Serves KV over the shards of this node, each key on the group crc32(key) % G."""

    def __init__(
        self,
        shards: Sequence[Shard],
        *,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        unsafe_stale_reads: bool = False,
    ) -> None:
        assert max_wait_seconds > 0
        assert shards, "a KV service needs at least one shard"
        self._shards = tuple(shards)
        self._max_wait_seconds = max_wait_seconds
        # UNSAFE, for testing the tester only: serve Get from local state on any member
        # without the read barrier, which breaks linearizability (see NodeConfig).
        self._unsafe_stale_reads = unsafe_stale_reads

    # ---- RPCs ----

    async def Get(self, request: kv_pb2.GetRequest, context: Context) -> kv_pb2.GetResponse:
        async def read() -> kv_pb2.GetResponse:
            check_key(request.key)
            shard = self._shard(request.key)
            if not self._unsafe_stale_reads:
                await self._bounded(shard.log.read_barrier())
            value = shard.machine.get(request.key)
            if value is None:
                return kv_pb2.GetResponse(found=False)
            return kv_pb2.GetResponse(found=True, value=value)

        return await self._serve("get", request.key, context, read)

    async def Put(self, request: kv_pb2.PutRequest, context: Context) -> kv_pb2.PutResponse:
        async def write() -> kv_pb2.PutResponse:
            check_key(request.key)
            check_value(request.value)
            check_session(request.client_id, request.sequence)
            await self._propose(request.key, kv.put_command(
                request.client_id, request.sequence, request.key, request.value))
            return kv_pb2.PutResponse()

        return await self._serve("put", request.key, context, write)

    async def Append(
        self, request: kv_pb2.AppendRequest, context: Context
    ) -> kv_pb2.AppendResponse:
        async def write() -> kv_pb2.AppendResponse:
            check_key(request.key)
            check_value(request.value)
            check_session(request.client_id, request.sequence)
            await self._propose(request.key, kv.append_command(
                request.client_id, request.sequence, request.key, request.value))
            return kv_pb2.AppendResponse()

        return await self._serve("append", request.key, context, write)

    async def Delete(
        self, request: kv_pb2.DeleteRequest, context: Context
    ) -> kv_pb2.DeleteResponse:
        async def write() -> kv_pb2.DeleteResponse:
            check_key(request.key)
            check_session(request.client_id, request.sequence)
            result = await self._propose(
                request.key, kv.delete_command(request.client_id, request.sequence, request.key))
            return kv_pb2.DeleteResponse(found=result.ok)

        return await self._serve("delete", request.key, context, write)

    async def CompareAndSet(
        self, request: kv_pb2.CompareAndSetRequest, context: Context
    ) -> kv_pb2.CompareAndSetResponse:
        async def write() -> kv_pb2.CompareAndSetResponse:
            check_key(request.key)
            check_value(request.value)
            expected = request.expected if request.HasField("expected") else None
            if expected is not None:
                check_value(expected, "expected value")
            check_session(request.client_id, request.sequence)
            result = await self._propose(request.key, kv.cas_command(
                request.client_id, request.sequence, request.key, expected, request.value))
            return kv_pb2.CompareAndSetResponse(ok=result.ok)

        return await self._serve("cas", request.key, context, write)

    async def OpenSession(
        self, request: kv_pb2.OpenSessionRequest, context: Context
    ) -> kv_pb2.OpenSessionResponse:
        async def write() -> kv_pb2.OpenSessionResponse:
            if request.client_id == 0:
                raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "client_id must be non-zero")
            if request.group >= len(self._shards):
                raise Rejection(grpc.StatusCode.INVALID_ARGUMENT,
                                f"group {request.group} does not exist: this cluster has "
                                f"{len(self._shards)} (GROUPS)")
            await self._propose_to(self._shards[request.group],
                                   kv.open_session_command(request.client_id))
            return kv_pb2.OpenSessionResponse()

        return await self._serve("open_session", b"", context, write, group=request.group)

    # ---- plumbing ----

    def _shard(self, key: bytes) -> Shard:
        return self._shards[group_of(key, len(self._shards))]

    async def _propose(self, key: bytes, command: bytes) -> kv_pb2.KVResult:
        return await self._propose_to(self._shard(key), command)

    async def _propose_to(self, shard: Shard, command: bytes) -> kv_pb2.KVResult:
        """Propose `command` and return its result; raise a Rejection if it was not applied."""
        encoded = await self._bounded(shard.log.propose(command))
        try:
            result = kv.decode_result(encoded)
        except DecodeError as error:
            raise Rejection(grpc.StatusCode.INTERNAL,
                            f"the state machine answered undecodable bytes: {error}") from error
        if result.status != kv.OK:
            raise result_rejection(result)
        return result

    async def _bounded(self, step: Awaitable[Response]) -> Response:
        try:
            async with asyncio.timeout(self._max_wait_seconds):
                return await step
        except TimeoutError as error:
            raise Rejection(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no outcome within {self._max_wait_seconds:g} s; the request may still be "
                "applied",
                ((ERROR_REASON, REASON_TIMED_OUT),),
            ) from error

    async def _serve(
        self, op: str, key: bytes, context: Context, handle: Callable[[], Awaitable[Response]],
        group: int = 0,
    ) -> Response:
        span = trace.get_current_span()
        span.set_attribute("kv.op", op)
        if key and span.is_recording():
            span.set_attribute("kv.key", printable(key))
        try:
            response = await handle()
        except NotLeader as error:
            rejection = not_leader_rejection(
                error, group_of(key, len(self._shards)) if key else group)
        except OutcomeUnknown as error:
            rejection = Rejection(
                grpc.StatusCode.UNAVAILABLE,
                f"outcome unknown: {error or 'leadership lost before the outcome was known'}",
                ((ERROR_REASON, REASON_OUTCOME_UNKNOWN),),
            )
        except Rejection as error:
            rejection = error
        except asyncio.CancelledError:
            # The client gave up (deadline or cancel); the command may still be applied.
            count_request(op, "CANCELLED")
            raise
        else:
            count_request(op, "OK")
            return response
        count_request(op, rejection.code.name)
        span.set_attribute("kv.error", rejection.message)
        await context.abort(rejection.code, rejection.message, rejection.metadata)
