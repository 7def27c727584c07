"""A client of the chain: writes at the head, reads at the tail (CR) or any replica (CRAQ).

It learns the chain from the members' `Chain.Status` (the newest epoch wins), follows a
refusal's hint (a replica that is not the head names it), and retries what definitely did
not happen (FAILED_PRECONDITION, a member that refuses connections) until its budget runs
out. Each write is named by one of the client's writer ids and a request number that grows
with each of that writer's writes; a write whose outcome is unknown (UNAVAILABLE after
sending, DEADLINE_EXCEEDED) is retried under the same name until its budget runs out, and the
chain applies it at most once. Only then does it raise `Indefinite`. A writer serves one call
at a time, so that its request numbers arrive in order; concurrent calls take different ones.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from distlab.client._errors import Definite, Indefinite, Unavailable
from distlab.core.ids import NodeId
from distlab.proto import chain_pb2, chain_pb2_grpc
from distlab.wire.channels import open_channel
from distlab.wire.metadata import LEADER_ID

ATTEMPT_SECONDS = 2.0
BACKOFF_SECONDS = 0.1
MODES = {"cr": chain_pb2.CHAIN_READ_MODE_CR, "craq": chain_pb2.CHAIN_READ_MODE_CRAQ}


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    id: int
    address: str
    health: str
    epoch: int = 0
    chain: tuple[int, ...] = ()
    joining: int = 0
    role: str = "unknown"
    sent: int = 0
    applied: int = 0


@dataclass(frozen=True, slots=True)
class ChainRead:
    value: bytes | None
    seq: int
    how: str
    node: int


@dataclass(slots=True)
class _Writer:
    """A name for writes: a random client id and its last request number."""

    client_id: int
    last_request: int = 0


class ChainClient:
    def __init__(self, members: Mapping[NodeId, str]) -> None:
        self._members = dict(members)
        self._channels: dict[NodeId, grpc.aio.Channel] = {}
        # The chain as last learned; forgotten whenever a replica refuses or fails.
        self._chain: tuple[int, ...] | None = None
        # Writers no call is using now.
        self._idle_writers: list[_Writer] = []

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close(grace=None)

    def _stub(self, node: NodeId) -> Any:
        channel = self._channels.get(node)
        if channel is None:
            channel = self._channels[node] = open_channel(self._members[node])
        return chain_pb2_grpc.ChainStub(channel)

    async def status(self, timeout: float = 2.0) -> list[ReplicaStatus]:
        async def one(node: NodeId) -> ReplicaStatus:
            address = str(self._members[node])
            try:
                answer = await self._stub(node).Status(chain_pb2.ChainStatusRequest(),
                                                       timeout=timeout)
            except grpc.aio.AioRpcError as error:
                return ReplicaStatus(int(node), address, f"down ({error.code().name})")
            return ReplicaStatus(int(node), address, "up", answer.epoch, tuple(answer.chain),
                                 answer.joining, answer.role, answer.sent, answer.applied)

        return list(await asyncio.gather(*(one(node) for node in sorted(self._members))))

    async def _current_chain(self) -> tuple[int, ...] | None:
        if self._chain is None:
            answered = [row for row in await self.status() if row.health == "up" and row.chain]
            if answered:
                self._chain = max(answered, key=lambda row: row.epoch).chain
        return self._chain

    async def put(self, key: bytes, value: bytes, timeout: float = 10.0) -> int:
        """The write's sequence number once the tail applied it."""
        writer = self._idle_writers.pop() if self._idle_writers else \
            _Writer(random.getrandbits(63) + 1)
        writer.last_request += 1
        try:
            return await self._put(key, value, writer, timeout)
        finally:
            self._idle_writers.append(writer)

    async def _put(self, key: bytes, value: bytes, writer: _Writer, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        hint: NodeId | None = None
        last = "no member answered"
        # Whether an attempt may have been applied: then running out of time is Indefinite.
        maybe_applied = False
        while time.monotonic() < deadline:
            target = hint
            if target is None:
                chain = await self._current_chain()
                target = NodeId(chain[0]) if chain else None
            hint = None
            if target is None or target not in self._members:
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            try:
                answer = await self._stub(target).Write(
                    chain_pb2.ChainWriteRequest(key=key, value=value,
                                                client_id=writer.client_id,
                                                request=writer.last_request),
                    timeout=min(ATTEMPT_SECONDS, max(0.1, deadline - time.monotonic())))
            except grpc.aio.AioRpcError as error:
                self._chain = None
                code = error.code()
                last = f"node {target}: {error.details()}"
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    hint = _hint(error)
                    await asyncio.sleep(BACKOFF_SECONDS)
                    continue
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise Definite(last) from error
                if code == grpc.StatusCode.ABORTED:
                    # A newer write of this writer is in the chain: this one is not applied
                    # now, and asking again cannot tell whether an earlier attempt was.
                    raise Indefinite(f"the write may have happened: {last}") from error
                if not (code == grpc.StatusCode.UNAVAILABLE and _refused_connection(error)):
                    maybe_applied = True  # asked again under the same name, below
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            return int(answer.seq)
        if maybe_applied:
            raise Indefinite(f"the write may have happened: no answer within {timeout:g} s: "
                             f"{last}")
        raise Unavailable(f"no write within {timeout:g} s: {last}")

    async def get(self, key: bytes, mode: str = "cr", node: NodeId | None = None,
                  timeout: float = 10.0) -> ChainRead:
        deadline = time.monotonic() + timeout
        last = "no member answered"
        while time.monotonic() < deadline:
            target = node
            if target is None:
                chain = await self._current_chain()
                if chain:
                    target = NodeId(chain[-1] if mode == "cr" else random.choice(chain))
            if target is None or target not in self._members:
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            try:
                answer = await self._stub(target).Read(
                    chain_pb2.ChainReadRequest(key=key, mode=MODES[mode]),
                    timeout=min(ATTEMPT_SECONDS, max(0.1, deadline - time.monotonic())))
            except grpc.aio.AioRpcError as error:
                self._chain = None
                last = f"node {target}: {error.details()}"
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise Definite(last) from error
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            return ChainRead(answer.value if answer.found else None, int(answer.seq),
                             answer.how, int(target))
        raise Unavailable(f"no read within {timeout:g} s: {last}")


def _hint(error: grpc.aio.AioRpcError) -> NodeId | None:
    for key, value in error.trailing_metadata() or ():
        if key == LEADER_ID and value.isdigit():
            return NodeId(int(value))
    return None


def _refused_connection(error: grpc.aio.AioRpcError) -> bool:
    details = (error.details() or "").lower()
    return "connect" in details or "refused" in details
