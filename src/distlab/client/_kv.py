"""An asyncio client of the replicated KV store that finds the leader and retries safely.

Each operation has a time budget. Within it the client sends to the member it believes
leads, follows NOT_LEADER's hint to the real leader, and retries attempts whose outcome is
unknown with the same request id (session and sequence), which the store applies at most
once. When the budget runs out the failure says whether the operation may have happened.

Sessions: every write needs a session with one write outstanding at a time, so the client
keeps a pool: a concurrent write takes an idle session or opens a new one. A client used by
64 tasks at once ends up with 64 sessions and one channel per member.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from opentelemetry import trace

from distlab.client._errors import (
    Indefinite,
    InvalidRequest,
    KVError,
    Rejected,
    Unavailable,
)
from distlab.core.ids import NodeId
from distlab.proto import kv_pb2, kv_pb2_grpc
from distlab.wire.channels import open_channel
from distlab.wire.metadata import ERROR_REASON, REASON_SESSION_EXPIRED, REASON_VALUE_TOO_LARGE
from distlab.wire.not_leader import NotLeaderHint, decode_not_leader, trailers_of

DEFAULT_CALL_TIMEOUT_SECONDS = 1.0
DEFAULT_OPERATION_TIMEOUT_SECONDS = 10.0
INITIAL_BACKOFF_SECONDS = 0.02
MAX_BACKOFF_SECONDS = 0.5

R = TypeVar("R")
Send = Callable[["kv_pb2_grpc.KVAsyncStub", float], Awaitable[R]]


def new_client_id() -> int:
    """A random non-zero 63-bit session id: collisions between clients are negligible."""
    return secrets.randbits(63) or 1


def never_sent(error: grpc.aio.AioRpcError) -> bool:
    """True when the call failed before any byte reached a server (no connection at all).

    gRPC reports both "could not connect" and "connection lost mid-call" as UNAVAILABLE; only
    the details tell them apart, and only the first proves the request was not delivered.
    """
    return (
        error.code() == grpc.StatusCode.UNAVAILABLE
        and "failed to connect" in (error.details() or "").lower()
    )


def bind_session(
    send: Callable[[kv_pb2_grpc.KVAsyncStub, float, int, int], Awaitable[R]],
    client_id: int, sequence: int,
) -> Send[R]:
    """`send` with the request id fixed: every retry of one write carries the same id."""
    return lambda stub, call_timeout: send(stub, call_timeout, client_id, sequence)


@dataclass(slots=True)
class _Session:
    client_id: int
    next_sequence: int = 1


@dataclass(slots=True)
class _Attempts:
    """What the attempts of one operation so far imply about its outcome."""

    description: str
    budget_seconds: float
    writes: bool
    maybe_applied: bool = False
    last_error: str = "no attempt finished"

    def exhausted(self) -> KVError:
        message = (f"{self.description}: no outcome within {self.budget_seconds:g} s; "
                   f"last error: {self.last_error}")
        if self.maybe_applied:
            return Indefinite(message + "; it may have been applied")
        return Unavailable(message)

    def escalate(self, error: KVError) -> KVError:
        """`error`, unless an earlier attempt may have been applied: then the outcome is open."""
        if self.maybe_applied and error.definite:
            return Indefinite(f"{error}; an earlier attempt may have been applied")
        return error


class _SessionExpired(Exception):
    """The store no longer knows the session used by this attempt."""


class KVClient:
    """A client of the KV service of a cluster.

    `cluster` is either node id -> address (the leader hint's id is then resolved through it,
    which works when the nodes' own addresses are not reachable from here, as with Docker) or a
    list of addresses. `call_timeout` bounds each RPC; `operation_timeout` bounds each
    operation with all its retries. `interceptors` are gRPC client interceptors (tracing).
    """

    def __init__(
        self,
        cluster: Mapping[NodeId, object] | Mapping[int, object] | Sequence[object],
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT_SECONDS,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT_SECONDS,
        interceptors: Sequence[Any] = (),
    ) -> None:
        if isinstance(cluster, Mapping):
            self._members = {int(node_id): str(address) for node_id, address in cluster.items()}
            self._addresses = [self._members[node_id] for node_id in sorted(self._members)]
        else:
            self._members = {}
            self._addresses = [str(address) for address in cluster]
        if not self._addresses:
            raise ValueError("a KV client needs at least one member address")
        if call_timeout <= 0 or operation_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.call_timeout = call_timeout
        self.operation_timeout = operation_timeout
        self._interceptors = list(interceptors)
        self._leader = self._addresses[0]
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, kv_pb2_grpc.KVAsyncStub] = {}
        self._idle_sessions: list[_Session] = []
        self._tracer = trace.get_tracer("distlab.client")

    async def __aenter__(self) -> KVClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels, self._stubs = self._channels, {}, {}
        for channel in channels.values():
            await channel.close(grace=None)

    @property
    def leader_address(self) -> str:
        """The member the next call goes to first: the last one that answered as leader."""
        return self._leader

    # ---- operations ----

    async def get(self, key: str, *, budget: float | None = None) -> str | None:
        """The value of `key`, or None when it is absent (a linearizable read).

        A read changes nothing, so when it fails it fails definitely.
        """
        request = kv_pb2.GetRequest(key=key)
        with self._span("get", key):
            attempts = self._attempts("get", key, budget, writes=False)
            response = await self._rpc(
                lambda stub, t: stub.Get(request, timeout=t), self._deadline(attempts), attempts)
        return response.value if response.found else None

    async def put(self, key: str, value: str, *, budget: float | None = None) -> None:
        await self._write("put", key, budget, lambda stub, t, cid, seq: stub.Put(
            kv_pb2.PutRequest(client_id=cid, sequence=seq, key=key, value=value), timeout=t))

    async def append(self, key: str, value: str, *, budget: float | None = None) -> None:
        """Append `value` to the current value of `key` (a missing key counts as "")."""
        await self._write("append", key, budget, lambda stub, t, cid, seq: stub.Append(
            kv_pb2.AppendRequest(client_id=cid, sequence=seq, key=key, value=value), timeout=t))

    async def delete(self, key: str, *, budget: float | None = None) -> bool:
        """Delete `key`; True when it existed."""
        response = await self._write("delete", key, budget, lambda stub, t, cid, seq:
                                     stub.Delete(kv_pb2.DeleteRequest(
                                         client_id=cid, sequence=seq, key=key), timeout=t))
        return response.found

    async def cas(
        self, key: str, expected: str | None, value: str, *, budget: float | None = None
    ) -> bool:
        """Set `key` to `value` if its current value is `expected` (None: if it is absent).

        False is a definite answer: the values differed and nothing changed.
        """
        request = kv_pb2.CompareAndSetRequest(key=key, value=value)
        if expected is not None:
            request.expected = expected

        def send(stub: kv_pb2_grpc.KVAsyncStub, t: float, cid: int, seq: int
                 ) -> Awaitable[kv_pb2.CompareAndSetResponse]:
            request.client_id = cid
            request.sequence = seq
            return stub.CompareAndSet(request, timeout=t)

        response = await self._write("cas", key, budget, send)
        return response.ok

    # ---- retries and sessions ----

    async def _write(
        self, op: str, key: str, budget: float | None,
        send: Callable[[kv_pb2_grpc.KVAsyncStub, float, int, int], Awaitable[R]],
    ) -> R:
        with self._span(op, key):
            attempts = self._attempts(op, key, budget, writes=True)
            deadline = self._deadline(attempts)
            while True:
                session: _Session | None = await self._take_session(deadline, attempts)
                assert session is not None
                try:
                    return await self._rpc(
                        bind_session(send, session.client_id, session.next_sequence),
                        deadline, attempts)
                except _SessionExpired:
                    session = None
                    if attempts.maybe_applied:
                        raise Indefinite(
                            f"{attempts.description}: the session expired after an attempt "
                            "that may have been applied") from None
                    # Nothing was applied under the old session: start over in a new one.
                finally:
                    if session is not None:
                        # The sequence is spent whatever happened: a later write must never
                        # reuse a request id whose first use may still be applied.
                        session.next_sequence += 1
                        self._idle_sessions.append(session)

    async def _take_session(self, deadline: float, attempts: _Attempts) -> _Session:
        if self._idle_sessions:
            return self._idle_sessions.pop()
        client_id = new_client_id()
        request = kv_pb2.OpenSessionRequest(client_id=client_id)
        # Opening is idempotent, so its own attempts never leave an open outcome behind.
        opening = _Attempts(f"opening a session for {attempts.description}",
                            attempts.budget_seconds, writes=False)
        try:
            await self._rpc(lambda stub, t: stub.OpenSession(request, timeout=t),
                            deadline, opening)
        except KVError as error:
            raise attempts.escalate(error) from None
        return _Session(client_id)

    async def _rpc(self, send: Send[R], deadline: float, attempts: _Attempts) -> R:
        """One operation's attempts: until an answer, a definite refusal, or the deadline."""
        clock = asyncio.get_running_loop()
        address = self._leader
        backoff = INITIAL_BACKOFF_SECONDS
        failures_since_pause = 0
        redirects = 0
        while True:
            remaining = deadline - clock.time()
            if remaining <= 0:
                raise attempts.exhausted()
            try:
                response = await send(self._stub(address), min(self.call_timeout, remaining))
            except grpc.aio.AioRpcError as error:
                hint = self._classify(error, address, attempts)
            else:
                self._leader = address
                return response
            if hint is not None and hint != address and redirects <= len(self._addresses):
                redirects += 1
                address = hint
                continue
            address = self._next_address(address)
            failures_since_pause += 1
            if failures_since_pause >= len(self._addresses):
                # Every member failed in turn: likely an election; give it time.
                remaining = deadline - clock.time()
                if remaining <= 0:
                    raise attempts.exhausted()
                await asyncio.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                failures_since_pause = 0
                redirects = 0

    def _classify(
        self, error: grpc.aio.AioRpcError, address: str, attempts: _Attempts
    ) -> str | None:
        """Record what a failed attempt implies; raise if it ends the operation, else return
        the leader it names (if any) to try next."""
        code = error.code()
        details = error.details() or ""
        reason = trailers_of(error).get(ERROR_REASON)
        if never_sent(error):
            cause = details.rsplit(": ", 1)[-1]
            attempts.last_error = f"cannot connect to {address} ({cause})"
        else:
            attempts.last_error = f"{address} answered {code.name}: {details}"
        hint = decode_not_leader(error)
        if hint is not None:
            return self._leader_hint(hint)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            # Every attempt carried the same request, so none of them was accepted either.
            raise InvalidRequest(details)
        if code == grpc.StatusCode.FAILED_PRECONDITION and reason == REASON_VALUE_TOO_LARGE:
            # The store's own answer for this request id: applied once, changing nothing.
            raise Rejected(details)
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            raise attempts.escalate(Rejected(details))
        if code == grpc.StatusCode.UNIMPLEMENTED:
            raise attempts.escalate(Rejected(f"{address} does not serve KV: {details}"))
        if code == grpc.StatusCode.ABORTED:
            if reason == REASON_SESSION_EXPIRED:
                raise _SessionExpired(details)
            raise Indefinite(f"{attempts.description}: {details}")
        if not never_sent(error) and attempts.writes:
            attempts.maybe_applied = True
        return None

    def _leader_hint(self, hint: NotLeaderHint) -> str | None:
        if hint.leader_id is not None and hint.leader_id in self._members:
            return self._members[hint.leader_id]
        address = hint.leader_address
        if address and address not in self._addresses:
            self._addresses.append(address)
        return address or None

    def _next_address(self, address: str) -> str:
        try:
            position = self._addresses.index(address)
        except ValueError:
            return self._addresses[0]
        return self._addresses[(position + 1) % len(self._addresses)]

    def _stub(self, address: str) -> kv_pb2_grpc.KVAsyncStub:
        stub = self._stubs.get(address)
        if stub is None:
            channel = open_channel(address, self._interceptors)
            self._channels[address] = channel
            stub = kv_pb2_grpc.KVStub(channel)
            self._stubs[address] = stub
        return stub

    def _attempts(self, op: str, key: str, budget: float | None, writes: bool) -> _Attempts:
        seconds = self.operation_timeout if budget is None else budget
        if seconds <= 0:
            raise ValueError("the time budget must be positive")
        return _Attempts(f"{op} {key!r}", seconds, writes)

    def _deadline(self, attempts: _Attempts) -> float:
        return asyncio.get_running_loop().time() + attempts.budget_seconds

    def _span(self, op: str, key: str) -> Any:
        return self._tracer.start_as_current_span(
            f"kv {op}", attributes={"kv.op": op, "kv.key": key})



