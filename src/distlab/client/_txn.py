"""A client of the Txn service: one transaction, begun at a node that becomes its
coordinator, and the transactions unfinished on each node.

A transaction that loses wait-die is retried under a new attempt id with the same age, so
that it grows old enough to win. Over nodes, one whose outcome is not known in time (the
coordinator died, or did not answer) is reported `unknown`: it may still commit. Over
groups, the coordinator is the leader of the first key's group: a member that does not lead
it refuses with NOT_LEADER, naming the leader, and the attempt goes there; an attempt whose
coordinator lost its group goes, under the same id, to the group's next leader, which
answers with the outcome its group recorded (or runs it, if nothing was). A node that cannot
be connected to at all never received the attempt, which then goes to the next node; when
none can be, `Unreachable` says so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc

from distlab.client._errors import Unreachable
from distlab.client._kv import never_sent
from distlab.core.ids import NodeId
from distlab.proto import txn_pb2, txn_pb2_grpc
from distlab.protocols.txn import Op
from distlab.wire.channels import open_channel
from distlab.wire.not_leader import decode_not_leader

STATUS_DEADLINE_SECONDS = 2.0
BACKOFF_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class TxnResult:
    outcome: str  # "committed", "aborted" or "unknown"
    reason: str = ""
    reads: dict[str, str | None] = field(default_factory=dict)
    # The commit timestamp (ns) of a read-write transaction over groups, or the timestamp a
    # read-only one read at; None where none is assigned (over nodes, 3PC, TXN_TIMESTAMPS
    # off).
    ts: int | None = None
    coordinator: NodeId | None = None

    def as_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome, "reason": self.reason or None, "reads": self.reads,
                "ts": self.ts}


@dataclass(frozen=True, slots=True)
class NodeTransactions:
    node: NodeId
    address: str
    error: str | None
    transactions: tuple[dict[str, object], ...] = ()


class TxnClient:
    def __init__(self, members: Mapping[NodeId, str]) -> None:
        if not members:
            raise ValueError("a cluster has at least one node")
        self._members = dict(sorted(members.items()))
        self._channels: dict[NodeId, grpc.aio.Channel] = {}
        # Over groups: the group a first key belongs to and each group's leader, as the
        # NOT_LEADER refusals said.
        self._group_of_key: dict[str, int] = {}
        self._leaders: dict[int, NodeId] = {}

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _stub(self, node: NodeId) -> txn_pb2_grpc.TxnAsyncStub:
        channel = self._channels.get(node)
        if channel is None:
            channel = self._channels[node] = open_channel(self._members[node])
        return txn_pb2_grpc.TxnStub(channel)

    async def execute(self, ops: Sequence[Op], protocol: str = "2pc", *,
                      participants: str = "nodes", node: NodeId | None = None,
                      timeout: float = 10.0, read_only: bool = False,
                      at_ts: int | None = None) -> TxnResult:
        """Run one transaction. Over groups, `read_only` reads its keys (gets only) without
        locks at TrueTime's latest, and `at_ts` reads them at that timestamp from the
        replicas of `node` (or of the first member that answers)."""
        if at_ts is not None:
            return await self._read_at(ops, at_ts, node, timeout)
        if participants == "groups":
            return await self._execute_over_groups(ops, protocol, node, timeout, read_only)
        if read_only:
            raise ValueError("read-only transactions run over groups")
        deadline = time.monotonic() + timeout
        base = uuid.uuid4().hex[:16]
        priority = time.time_ns()
        candidates = [node] if node is not None else list(self._members)
        request_ops = [txn_pb2.TxnOp(kind=op.kind.value, key=op.key, argument=op.argument)
                       for op in ops]
        attempt = 0
        last_refused = ""
        last_abort = ""
        while candidates:
            target = candidates[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            request = txn_pb2.ExecuteRequest(txn_id=f"{base}.{attempt}", protocol=protocol,
                                             ops=request_ops, priority=priority)
            try:
                response = await self._stub(target).Execute(request, timeout=remaining)
            except grpc.aio.AioRpcError as error:
                if never_sent(error):
                    last_refused = f"node {target}: {error.details()}"
                    candidates.pop(0)
                    attempt += 1
                    continue
                if error.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                    grpc.StatusCode.FAILED_PRECONDITION):
                    raise ValueError(error.details() or "refused") from None
                return TxnResult("unknown", f"node {target}: {error.code().name}: "
                                 f"{error.details()}", coordinator=target)
            reads = {read.key: read.value if read.present else None for read in response.reads}
            if response.outcome == "committed":
                return TxnResult("committed", reads=reads, coordinator=target)
            if not response.reason.startswith("wait-die"):
                return TxnResult("aborted", response.reason, coordinator=target)
            last_abort = response.reason
            attempt += 1
            await asyncio.sleep(min(BACKOFF_SECONDS * attempt, max(0.0, remaining)))
        if last_refused and not candidates:
            raise Unreachable(f"no node accepts a connection ({last_refused}); the "
                              "transaction was never sent")
        if last_abort:
            # Every attempt aborted: none of them happened.
            return TxnResult("aborted", f"{last_abort} (retried until the budget ran out)")
        return TxnResult("unknown", "no outcome within the time budget")

    async def _read_at(self, ops: Sequence[Op], ts: int, node: NodeId | None,
                       timeout: float) -> TxnResult:
        request = txn_pb2.ExecuteRequest(
            txn_id=uuid.uuid4().hex[:16], protocol="2pc", participants="groups", at_ts=ts,
            ops=[txn_pb2.TxnOp(kind=op.kind.value, key=op.key, argument=op.argument)
                 for op in ops])
        refused = ""
        for target in [node] if node is not None else list(self._members):
            try:
                response = await self._stub(target).Execute(request, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.INVALID_ARGUMENT:
                    raise ValueError(error.details() or "refused") from None
                if never_sent(error):
                    refused = f"node {target}: {error.details()}"
                    continue
                # A read changes nothing: one that could not be answered did not happen.
                return TxnResult("aborted", f"node {target}: {error.details()}",
                                 coordinator=target)
            return TxnResult("committed", reads=_reads(response), ts=response.ts,
                             coordinator=target)
        raise Unreachable(f"no node accepts a connection ({refused}); nothing was read")

    async def _execute_over_groups(self, ops: Sequence[Op], protocol: str,
                                   node: NodeId | None, timeout: float,
                                   read_only: bool = False) -> TxnResult:
        deadline = time.monotonic() + timeout
        base = uuid.uuid4().hex[:16]
        priority = time.time_ns()
        request_ops = [txn_pb2.TxnOp(kind=op.kind.value, key=op.key, argument=op.argument)
                       for op in ops]
        first_key = ops[0].key if ops else ""
        members = list(self._members)
        group = self._group_of_key.get(first_key)
        target = (node if node is not None
                  else self._leaders.get(group, members[0]) if group is not None
                  else members[hash(first_key) % len(members)])
        attempt = 0
        # Whether the current attempt may have begun somewhere (its outcome then comes from
        # the group's records, under the same id).
        begun = False
        last_abort = ""
        unknown = ""
        refused: set[NodeId] = set()
        while (remaining := deadline - time.monotonic()) > 0:
            request = txn_pb2.ExecuteRequest(txn_id=f"{base}.{attempt}", protocol=protocol,
                                             ops=request_ops, priority=priority,
                                             participants="groups", read_only=read_only)
            try:
                response = await self._stub(target).Execute(request, timeout=remaining)
            except grpc.aio.AioRpcError as error:
                hint = decode_not_leader(error)
                if hint is not None:
                    self._group_of_key[first_key] = hint.group
                    if hint.leader_id is not None and hint.leader_id in self._members:
                        self._leaders[hint.group] = target = hint.leader_id
                    else:
                        target = members[(members.index(target) + 1) % len(members)]
                        await asyncio.sleep(min(BACKOFF_SECONDS, max(0.0, remaining)))
                    continue
                if error.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                    grpc.StatusCode.FAILED_PRECONDITION):
                    raise ValueError(error.details() or "refused") from None
                if never_sent(error):
                    refused.add(target)
                    if refused >= set(members):
                        break
                else:
                    begun = True
                    unknown = f"node {target}: {error.code().name}: {error.details()}"
                # The coordinator's group will have (or has) another leader: ask it.
                target = members[(members.index(target) + 1) % len(members)]
                await asyncio.sleep(min(BACKOFF_SECONDS, max(0.0, remaining)))
                continue
            refused.clear()
            reads = _reads(response)
            if response.outcome == "committed":
                return TxnResult("committed", reads=reads, coordinator=target,
                                 ts=response.ts if response.HasField("ts") else None)
            if not response.reason.startswith("wait-die"):
                return TxnResult("aborted", response.reason, coordinator=target)
            last_abort = response.reason
            attempt += 1
            begun = False
            await asyncio.sleep(min(BACKOFF_SECONDS * attempt, max(0.0, remaining)))
        if begun:
            return TxnResult("unknown", unknown or "no outcome within the time budget")
        if refused >= set(members):
            raise Unreachable("no node accepts a connection; the transaction was never sent")
        if last_abort:
            return TxnResult("aborted", f"{last_abort} (retried until the budget ran out)")
        return TxnResult("unknown", "no outcome within the time budget")

    async def status(self) -> list[NodeTransactions]:
        return list(await asyncio.gather(*(self._node_status(node) for node in self._members)))

    async def _node_status(self, node: NodeId) -> NodeTransactions:
        address = self._members[node]
        try:
            response = await self._stub(node).Status(txn_pb2.TxnStatusRequest(),
                                                     timeout=STATUS_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            return NodeTransactions(node, address, f"{error.code().name}: {error.details()}")
        return NodeTransactions(node, address, None, tuple(
            {"id": entry.txn_id, "role": entry.role, "state": entry.state,
             "coordinator": entry.coordinator, "age_seconds": round(entry.age_seconds, 3),
             "locks": list(entry.locks),
             "group": entry.group if entry.HasField("group") else None}
            for entry in response.transactions))


def _reads(response: txn_pb2.ExecuteResponse) -> dict[str, str | None]:
    return {read.key: read.value if read.present else None for read in response.reads}
