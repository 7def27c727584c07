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
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError
from opentelemetry import trace
from prometheus_client import Counter

from distlab.apps import kv
from distlab.apps.kv import KVStateMachine
from distlab.core.replicated_log import NotLeader, OutcomeUnknown, ReplicatedLog, TimedOut
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
Request = TypeVar("Request")
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
        unsafe_stale_reads: bool = False,
    ) -> None:
        assert shards, "a KV service needs at least one shard"
        self._shards = tuple(shards)
        # UNSAFE, for testing the tester only: serve Get from local state on any member
        # without the read barrier, which breaks linearizability (see NodeConfig).
        self._unsafe_stale_reads = unsafe_stale_reads

    # ---- RPCs ----

    async def Get(self, request: kv_pb2.GetRequest, context: Context) -> kv_pb2.GetResponse:
        async def read() -> kv_pb2.GetResponse:
            check_key(request.key)
            shard = self._shard(request.key)
            if not self._unsafe_stale_reads:
                await shard.log.read_barrier()
            value = shard.machine.get(request.key)
            if value is None:
                return kv_pb2.GetResponse(found=False)
            return kv_pb2.GetResponse(found=True, value=value)

        return await self._serve("get", request.key, context, read)

    async def Put(self, request: kv_pb2.PutRequest, context: Context) -> kv_pb2.PutResponse:
        await self._write("put", request.key, context, _put_command, request)
        return kv_pb2.PutResponse()

    async def Append(
        self, request: kv_pb2.AppendRequest, context: Context
    ) -> kv_pb2.AppendResponse:
        await self._write("append", request.key, context, _append_command, request)
        return kv_pb2.AppendResponse()

    async def Delete(
        self, request: kv_pb2.DeleteRequest, context: Context
    ) -> kv_pb2.DeleteResponse:
        result = await self._write("delete", request.key, context, _delete_command, request)
        return kv_pb2.DeleteResponse(found=result.ok)

    async def CompareAndSet(
        self, request: kv_pb2.CompareAndSetRequest, context: Context
    ) -> kv_pb2.CompareAndSetResponse:
        result = await self._write("cas", request.key, context, _cas_command, request)
        return kv_pb2.CompareAndSetResponse(ok=result.ok)

    async def OpenSession(
        self, request: kv_pb2.OpenSessionRequest, context: Context
    ) -> kv_pb2.OpenSessionResponse:
        await self._write("open_session", b"", context, self._open_session_command, request,
                          group=request.group)
        return kv_pb2.OpenSessionResponse()

    def _open_session_command(self, request: kv_pb2.OpenSessionRequest) -> bytes:
        if request.client_id == 0:
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "client_id must be non-zero")
        if request.group >= len(self._shards):
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT,
                            f"group {request.group} does not exist: this cluster has "
                            f"{len(self._shards)} (GROUPS)")
        return kv.open_session_command(request.client_id)

    # ---- plumbing ----

    def _shard(self, key: bytes) -> Shard:
        return self._shards[group_of(key, len(self._shards))]

    async def _write(self, op: str, key: bytes, context: Context,
                     command_of: Callable[[Request], bytes], request: Request,
                     group: int | None = None) -> kv_pb2.KVResult:
        """Check and encode `request` as a command (`command_of` raises a Rejection for a
        bad one), propose it on its group (the key's, or `group`), and return the state
        machine's result; a failure is answered with its status. Every write comes this
        way, so it is one coroutine: no closure, no timer (the log bounds the wait, and
        answers TimedOut)."""
        span = _annotate(op, key)
        try:
            command = command_of(request)
            shard = self._shard(key) if group is None else self._shards[group]
            result = _result_of(await shard.log.propose(command))
        except asyncio.CancelledError:
            # The client gave up (deadline or cancel); the command may still be applied.
            count_request(op, "CANCELLED")
            raise
        except _ANSWERED as error:
            await self._refuse(op, key, group or 0, context, span, error)
        count_request(op, "OK")
        return result

    async def _serve(
        self, op: str, key: bytes, context: Context, handle: Callable[[], Awaitable[Response]],
    ) -> Response:
        span = _annotate(op, key)
        try:
            response = await handle()
        except asyncio.CancelledError:
            count_request(op, "CANCELLED")
            raise
        except _ANSWERED as error:
            await self._refuse(op, key, 0, context, span, error)
        count_request(op, "OK")
        return response

    async def _refuse(self, op: str, key: bytes, group: int, context: Context,
                      span: trace.Span, error: Exception) -> NoReturn:
        """Answer the request with the status `error` stands for (DESIGN §6)."""
        if isinstance(error, NotLeader):
            rejection = not_leader_rejection(
                error, group_of(key, len(self._shards)) if key else group)
        elif isinstance(error, TimedOut):
            rejection = Rejection(grpc.StatusCode.DEADLINE_EXCEEDED,
                                  f"{error}; the request may still be applied",
                                  ((ERROR_REASON, REASON_TIMED_OUT),))
        elif isinstance(error, OutcomeUnknown):
            rejection = Rejection(
                grpc.StatusCode.UNAVAILABLE,
                f"outcome unknown: {error or 'leadership lost before the outcome was known'}",
                ((ERROR_REASON, REASON_OUTCOME_UNKNOWN),),
            )
        else:
            assert isinstance(error, Rejection)
            rejection = error
        count_request(op, rejection.code.name)
        span.set_attribute("kv.error", rejection.message)
        await context.abort(rejection.code, rejection.message, rejection.metadata)


# What a request is answered with a status for; anything else is a bug, and gRPC says so.
_ANSWERED = (NotLeader, OutcomeUnknown, Rejection)


def _annotate(op: str, key: bytes) -> trace.Span:
    """The request's span (recording only when traced), with the operation and key."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("kv.op", op)
        if key:
            span.set_attribute("kv.key", printable(key))
    return span


def _result_of(encoded: bytes) -> kv_pb2.KVResult:
    """The state machine's result for a command; a Rejection if it was not applied."""
    try:
        result = kv.decode_result(encoded)
    except DecodeError as error:
        raise Rejection(grpc.StatusCode.INTERNAL,
                        f"the state machine answered undecodable bytes: {error}") from error
    if result.status != kv.OK:
        raise result_rejection(result)
    return result


def _put_command(request: kv_pb2.PutRequest) -> bytes:
    key, value = request.key, request.value
    client_id, sequence = request.client_id, request.sequence
    # One test for the request every client sends; the checks name what is wrong otherwise.
    if (not key or len(key) > kv.MAX_KEY_BYTES or len(value) > kv.MAX_VALUE_BYTES
            or not client_id or not sequence):
        check_key(key)
        check_value(value)
        check_session(client_id, sequence)
    return kv.put_command(client_id, sequence, key, value)


def _append_command(request: kv_pb2.AppendRequest) -> bytes:
    check_key(request.key)
    check_value(request.value)
    check_session(request.client_id, request.sequence)
    return kv.append_command(request.client_id, request.sequence, request.key, request.value)


def _delete_command(request: kv_pb2.DeleteRequest) -> bytes:
    check_key(request.key)
    check_session(request.client_id, request.sequence)
    return kv.delete_command(request.client_id, request.sequence, request.key)


def _cas_command(request: kv_pb2.CompareAndSetRequest) -> bytes:
    check_key(request.key)
    check_value(request.value)
    expected = request.expected if request.HasField("expected") else None
    if expected is not None:
        check_value(expected, "expected value")
    check_session(request.client_id, request.sequence)
    return kv.cas_command(request.client_id, request.sequence, request.key, expected,
                          request.value)
