"""An asyncio client of the replicated KV store that finds the leaders and retries safely.

The store is sharded: key k belongs to group crc32(k) % G, each group a replicated log over
every node with a leader of its own. The client learns G from the first node that answers
Admin.Status (a node without Admin, or one that reports 0 groups, hosts one), routes each
key to its group, and remembers each group's leader, learned from Status and from NOT_LEADER
hints.

Each operation has a time budget. Within it the client sends to the member it believes
leads the key's group, follows NOT_LEADER's hint to the real leader, and retries attempts
whose outcome is unknown with the same request id (session and sequence), which the store
applies at most once. When the budget runs out the failure says whether the operation may
have happened. Every call is bounded twice: by gRPC's deadline and, a little past it, by the
event loop's clock (`distlab.client._deadlines`), so an operation ends within its budget plus
that grace whatever the members do, even when a call's completion never reaches the client.
A client made with `fail_when_unreachable` does not wait for the budget when every member
refuses the connection: it fails at once (`Unreachable`), since nothing was sent.

Keys and values are byte strings: each method takes `bytes`, or a `str` standing for its UTF-8
bytes (see `distlab.wire.kv_bytes`); `get` answers a `str`, `get_bytes` the bytes.

Sessions: every write needs a session of its group's store with one write outstanding at a
time, so the client keeps a pool per group: a concurrent write takes an idle session or opens
a new one. A client used by 64 tasks at once ends up with up to 64 sessions per group and one
channel per member.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from opentelemetry import trace

from distlab.client._deadlines import CallOverran, bounded
from distlab.client._errors import (
    Indefinite,
    InvalidRequest,
    KVError,
    Rejected,
    Unavailable,
    Unreachable,
)
from distlab.client._leaders import LeaderDirectory
from distlab.core.ids import NodeId
from distlab.proto import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc
from distlab.wire.channels import open_channel
from distlab.wire.kv_bytes import KVBytes, describe, printable, to_bytes, to_text
from distlab.wire.metadata import ERROR_REASON, REASON_SESSION_EXPIRED, REASON_VALUE_TOO_LARGE
from distlab.wire.not_leader import decode_not_leader, trailers_of
from distlab.wire.sharding import group_of
from distlab.wire.status import group_count

DEFAULT_CALL_TIMEOUT_SECONDS = 1.0
DEFAULT_OPERATION_TIMEOUT_SECONDS = 10.0
INITIAL_BACKOFF_SECONDS = 0.02
# While every member refuses (an election under way), the client asks again at least this
# often: a new leader serves within an election timeout, and a longer pause would only add
# itself to the failover a user waits through (at 0.5 s it added 0.3 s to the median).
MAX_BACKOFF_SECONDS = 0.1

R = TypeVar("R")
# The tracer providers whose spans record nothing (the API's default, and an explicit no-op),
# and the operation's stand-in span under them.
_NO_SPANS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_UNTRACED = contextlib.nullcontext(trace.INVALID_SPAN)
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


def connect_failure(error: grpc.aio.AioRpcError) -> str | None:
    """Why the call could not connect ("Connection refused"), or None when it reached a server
    (or may have)."""
    if not never_sent(error):
        return None
    return (error.details() or "").rsplit(": ", 1)[-1]


def encoded(what: str, data: KVBytes) -> bytes:
    """The bytes of a key or value; a `str` that stands for no bytes is an invalid request."""
    try:
        return to_bytes(data)
    except UnicodeEncodeError as error:
        raise InvalidRequest(f"{what} {describe(data)} is not encodable: {error.reason} "
                             f"at position {error.start}") from None


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

    # The operation ("put", or a sentence) and its key, described only when a message needs
    # them: most operations succeed at once and are never described.
    what: str
    key: bytes
    budget_seconds: float
    writes: bool
    maybe_applied: bool = False
    last_error: str = "no attempt finished"
    # Member -> why it could not be connected to, for the members that refused in a row.
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"{self.what} {describe(self.key)}" if self.key else self.what

    def unreachable(self) -> Unreachable:
        causes = "; ".join(f"{address} ({cause})" for address, cause in self.refused.items())
        return Unreachable(f"{self.description}: cannot connect to any member: {causes}")

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
    With `fail_when_unreachable`, an operation fails at once with `Unreachable` when every
    member refuses the connection and no earlier attempt may have been applied, rather than
    retrying until its budget runs out (a command line wants that answer; a long-running
    client riding out a restart of the whole cluster does not).
    """

    def __init__(
        self,
        cluster: Mapping[NodeId, object] | Mapping[int, object] | Sequence[object],
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT_SECONDS,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT_SECONDS,
        interceptors: Sequence[Any] = (),
        fail_when_unreachable: bool = False,
    ) -> None:
        self._directory = LeaderDirectory(cluster)
        # The directory's own tables, which every attempt reads and updates.
        self._members, self._addresses = self._directory.members, self._directory.addresses
        if call_timeout <= 0 or operation_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.call_timeout = call_timeout
        self.operation_timeout = operation_timeout
        self.fail_when_unreachable = fail_when_unreachable
        # The last failed attempt of any operation, described: what a waiting caller shows.
        self.last_failure: str | None = None
        # Calls gRPC did not end by their deadline, which the client cut off: each one is a
        # completion that never reached this event loop, worth reporting, never expected.
        self.overrun_calls = 0
        self.last_overrun: str | None = None
        self._interceptors = list(interceptors)
        # Learned once, from the first node that answers Admin.Status.
        self._group_count: int | None = None
        self._learning = asyncio.Lock()
        self._leaders = self._directory.leaders
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, kv_pb2_grpc.KVAsyncStub] = {}
        self._idle_sessions: dict[int, list[_Session]] = {}
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
        """The member the next call for group 0 goes to first (see `leader_of`)."""
        return self.leader_of(0)

    def leader_of(self, group: int) -> str:
        """The member the next call for `group` goes to first: the last one that answered as
        its leader, or was named so."""
        return self._directory.leader_of(group)

    async def group_count(self, *, budget: float | None = None) -> int:
        """How many groups the store is sharded over (asking a node the first time)."""
        attempts = self._attempts("group count", b"", budget, writes=False)
        return await self._groups(self._deadline(attempts), attempts)

    async def group_of(self, key: KVBytes, *, budget: float | None = None) -> int:
        """The group `key` belongs to."""
        return group_of(encoded("key", key), await self.group_count(budget=budget))

    # ---- operations ----

    async def get(self, key: KVBytes, *, budget: float | None = None) -> str | None:
        """The value of `key` in its `str` form, or None when it is absent (a linearizable
        read). A read changes nothing, so when it fails it fails definitely."""
        value = await self.get_bytes(key, budget=budget)
        return None if value is None else to_text(value)

    async def get_bytes(self, key: KVBytes, *, budget: float | None = None) -> bytes | None:
        """The value of `key`, or None when it is absent (a linearizable read)."""
        raw_key = encoded("key", key)
        request = kv_pb2.GetRequest(key=raw_key)
        with self._span("get", raw_key) as span:
            attempts = self._attempts("get", raw_key, budget, writes=False)
            deadline = self._deadline(attempts)
            group = await self._group_of(raw_key, deadline, attempts, span)
            response = await self._rpc(
                lambda stub, t: stub.Get(request, timeout=t), deadline, attempts, group)
        return response.value if response.found else None

    async def put(self, key: KVBytes, value: KVBytes, *, budget: float | None = None) -> None:
        raw_key, raw_value = encoded("key", key), encoded("value", value)
        await self._write("put", raw_key, budget, lambda stub, t, cid, seq: stub.Put(
            kv_pb2.PutRequest(client_id=cid, sequence=seq, key=raw_key, value=raw_value),
            timeout=t))

    async def append(self, key: KVBytes, value: KVBytes, *, budget: float | None = None
                     ) -> None:
        """Append `value` to the current value of `key` (a missing key counts as empty)."""
        raw_key, raw_value = encoded("key", key), encoded("value", value)
        await self._write("append", raw_key, budget, lambda stub, t, cid, seq: stub.Append(
            kv_pb2.AppendRequest(client_id=cid, sequence=seq, key=raw_key, value=raw_value),
            timeout=t))

    async def delete(self, key: KVBytes, *, budget: float | None = None) -> bool:
        """Delete `key`; True when it existed."""
        raw_key = encoded("key", key)
        response = await self._write("delete", raw_key, budget, lambda stub, t, cid, seq:
                                     stub.Delete(kv_pb2.DeleteRequest(
                                         client_id=cid, sequence=seq, key=raw_key), timeout=t))
        return response.found

    async def cas(
        self, key: KVBytes, expected: KVBytes | None, value: KVBytes, *,
        budget: float | None = None,
    ) -> bool:
        """Set `key` to `value` if its current value is `expected` (None: if it is absent).

        False is a definite answer: the values differed and nothing changed.
        """
        raw_key = encoded("key", key)
        request = kv_pb2.CompareAndSetRequest(key=raw_key, value=encoded("value", value))
        if expected is not None:
            request.expected = encoded("expected value", expected)

        def send(stub: kv_pb2_grpc.KVAsyncStub, t: float, cid: int, seq: int
                 ) -> Awaitable[kv_pb2.CompareAndSetResponse]:
            request.client_id = cid
            request.sequence = seq
            return stub.CompareAndSet(request, timeout=t)

        response = await self._write("cas", raw_key, budget, send)
        return response.ok

    # ---- retries and sessions ----

    async def _write(
        self, op: str, key: bytes, budget: float | None,
        send: Callable[[kv_pb2_grpc.KVAsyncStub, float, int, int], Awaitable[R]],
    ) -> R:
        with self._span(op, key) as span:
            attempts = self._attempts(op, key, budget, writes=True)
            deadline = self._deadline(attempts)
            group = await self._group_of(key, deadline, attempts, span)
            idle = self._idle_sessions.setdefault(group, [])
            while True:
                session: _Session | None = await self._take_session(group, deadline, attempts)
                assert session is not None
                try:
                    return await self._rpc(
                        bind_session(send, session.client_id, session.next_sequence),
                        deadline, attempts, group)
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
                        idle.append(session)

    async def _take_session(self, group: int, deadline: float, attempts: _Attempts
                            ) -> _Session:
        idle = self._idle_sessions.setdefault(group, [])
        if idle:
            return idle.pop()
        client_id = new_client_id()
        request = kv_pb2.OpenSessionRequest(client_id=client_id, group=group)
        # Opening is idempotent, so its own attempts never leave an open outcome behind.
        opening = _Attempts(f"opening a session for {attempts.description}", b"",
                            attempts.budget_seconds, writes=False)
        try:
            await self._rpc(lambda stub, t: stub.OpenSession(request, timeout=t),
                            deadline, opening, group)
        except KVError as error:
            raise attempts.escalate(error) from None
        return _Session(client_id)

    async def _rpc(self, send: Send[R], deadline: float, attempts: _Attempts, group: int) -> R:
        """One operation's attempts on `group`: until an answer, a definite refusal, or the
        deadline."""
        clock = asyncio.get_running_loop()
        address = self.leader_of(group)
        backoff = INITIAL_BACKOFF_SECONDS
        failures_since_pause = 0
        redirects = 0
        while True:
            remaining = deadline - clock.time()
            if remaining <= 0:
                raise attempts.exhausted()
            call_timeout = min(self.call_timeout, remaining)
            try:
                response = await bounded(send(self._stub(address), call_timeout), call_timeout)
            except grpc.aio.AioRpcError as error:
                hint = self._classify(error, address, attempts)
            except CallOverran as overran:
                hint = None
                self._record_overrun(overran, address, attempts)
            else:
                self._leaders[group] = address
                return response
            if (self.fail_when_unreachable and not attempts.maybe_applied
                    and attempts.refused.keys() >= set(self._addresses)):
                raise attempts.unreachable()
            if hint is not None and hint != address and redirects <= len(self._addresses):
                redirects += 1
                address = self._leaders[group] = hint
                continue
            address = self._directory.next_after(address)
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

    async def _group_of(self, key: bytes, deadline: float, attempts: _Attempts, span: Any
                        ) -> int:
        group = group_of(key, await self._groups(deadline, attempts))
        span.set_attribute("kv.group", group)
        return group

    async def _groups(self, deadline: float, attempts: _Attempts) -> int:
        """G, asking the members in turn the first time (one learner at a time)."""
        if self._group_count is not None:
            return self._group_count
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(0.0, remaining)), self._learning:
                if self._group_count is None:
                    self._group_count = await self._ask_group_count(deadline, attempts)
        except TimeoutError:
            raise attempts.exhausted() from None
        return self._group_count

    async def _ask_group_count(self, deadline: float, attempts: _Attempts) -> int:
        clock = asyncio.get_running_loop()
        backoff = INITIAL_BACKOFF_SECONDS
        while True:
            for address in list(self._addresses):
                remaining = deadline - clock.time()
                if remaining <= 0:
                    raise attempts.exhausted()
                admin = admin_pb2_grpc.AdminStub(self._channel(address))
                call_timeout = min(self.call_timeout, remaining)
                try:
                    status = await bounded(
                        admin.Status(admin_pb2.StatusRequest(), timeout=call_timeout),
                        call_timeout)
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                        return 1  # a bare KV server: one log, one group
                    self._record_failure(error, address, attempts)
                    continue
                except CallOverran as overran:
                    self._record_overrun(overran, address, attempts)
                    continue
                self._directory.learn_from(address, status)
                return group_count(status)
            if self.fail_when_unreachable and attempts.refused.keys() >= set(self._addresses):
                raise attempts.unreachable()
            remaining = deadline - clock.time()
            if remaining <= 0:
                raise attempts.exhausted()
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _record_failure(self, error: grpc.aio.AioRpcError, address: str, attempts: _Attempts
                        ) -> None:
        """Note what a failed attempt says about `address`, for the messages and for telling
        an unreachable cluster from a busy one."""
        cause = connect_failure(error)
        if cause is None:
            attempts.refused.clear()
            attempts.last_error = f"{address} answered {error.code().name}: {error.details() or ''}"
        else:
            attempts.refused[address] = cause
            attempts.last_error = f"cannot connect to {address} ({cause})"
        self.last_failure = attempts.last_error

    def _record_overrun(self, overran: CallOverran, address: str, attempts: _Attempts
                        ) -> None:
        """A call to `address` that gRPC did not end by its deadline: the member may have
        received it, so a write's outcome is open, as after DEADLINE_EXCEEDED."""
        attempts.refused.clear()
        attempts.last_error = f"{address} did not answer: {overran}"
        if attempts.writes:
            attempts.maybe_applied = True
        self.last_failure = attempts.last_error
        self.overrun_calls += 1
        self.last_overrun = f"{attempts.description} at {address}: {overran}"

    def _classify(
        self, error: grpc.aio.AioRpcError, address: str, attempts: _Attempts
    ) -> str | None:
        """Record what a failed attempt implies; raise if it ends the operation, else return
        the leader it names (if any) to try next."""
        code = error.code()
        details = error.details() or ""
        reason = trailers_of(error).get(ERROR_REASON)
        self._record_failure(error, address, attempts)
        hint = decode_not_leader(error)
        if hint is not None:
            return self._directory.follow(hint)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            # Every attempt carried the same request, so none of them was accepted either.
            raise InvalidRequest(details)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
            # A message over gRPC's size limit is refused before any handler sees it.
            raise attempts.escalate(InvalidRequest(f"the request is too large: {details}"))
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

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_channel(address, self._interceptors)
        return channel

    def _stub(self, address: str) -> kv_pb2_grpc.KVAsyncStub:
        stub = self._stubs.get(address)
        if stub is None:
            stub = self._stubs[address] = kv_pb2_grpc.KVStub(self._channel(address))
        return stub

    def _attempts(self, op: str, key: bytes, budget: float | None, writes: bool) -> _Attempts:
        seconds = self.operation_timeout if budget is None else budget
        if seconds <= 0:
            raise ValueError("the time budget must be positive")
        return _Attempts(op, key, seconds, writes)

    def _deadline(self, attempts: _Attempts) -> float:
        return asyncio.get_running_loop().time() + attempts.budget_seconds

    def _span(self, op: str, key: bytes) -> Any:
        # Without a tracer provider of the SDK every span would be a no-op, and building one
        # costs an operation more than the rest of the client's own work.
        if isinstance(trace.get_tracer_provider(), _NO_SPANS):
            return _UNTRACED
        return self._tracer.start_as_current_span(
            f"kv {op}", attributes={"kv.op": op, "kv.key": printable(key)})



