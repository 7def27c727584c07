"""A tiny synchronous world for the chain core: replicas, the master, a lossless FIFO (or
lossy) message queue, and each replica's records, with no driver and no event loop."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    ChainMaster,
    ChainReplica,
    MasterCall,
    Message,
    ReplicaConfig,
    Reply,
    decode_result,
    durable,
    init_command,
    join_command,
    promote_command,
    recover,
    remove_command,
    renew_command,
)


class Cluster:
    def __init__(self, size: int, bugs: Iterable[str] = ()) -> None:
        self.ids = [NodeId(i) for i in range(1, size + 1)]
        self.bugs = frozenset(bugs)
        self.master = ChainMaster()
        self.master.apply(0, init_command(self.ids))
        self.disks: dict[NodeId, list[tuple[int, bytes]]] = {node: [] for node in self.ids}
        self.replicas: dict[NodeId, ChainReplica] = {}
        self.queue: deque[Message] = deque()
        self.replies: dict[NodeId, list[Reply]] = {node: [] for node in self.ids}
        self.down: set[NodeId] = set()
        self.drop: set[type] = set()
        for node in self.ids:
            self.start(node)

    def start(self, node: NodeId) -> ChainReplica:
        replica = ChainReplica(ReplicaConfig(node, planted_bugs=self.bugs),
                               recover(self.disks[node]))
        self.replicas[node] = replica
        self.down.discard(node)
        replica.configure(self.master.config)
        self._drain(node)
        return replica

    def add(self, node: NodeId) -> ChainReplica:
        """A node the cluster gains: it starts with nothing, as a member started with JOIN
        does, and learns the chain from the master."""
        self.ids.append(node)
        self.disks[node] = []
        self.replies[node] = []
        return self.start(node)

    def crash(self, node: NodeId) -> None:
        self.down.add(node)

    def snapshot(self, node: NodeId) -> None:
        """Replace the node's records by a snapshot of what they replay to, as its storage
        does once they pass the threshold."""
        self.disks[node] = durable.snapshot_records(self.replicas[node].durable_state())

    def propose(self, command: bytes) -> None:
        self.master.apply(0, command)

    def remove(self, node: NodeId) -> None:
        self.propose(remove_command(node, self.master.renewals.get(node, 0)))
        self.inform()

    def inform(self) -> None:
        """The master's configuration reaches every live replica."""
        for node in self.ids:
            if node not in self.down:
                self.replicas[node].configure(self.master.config)
                self._drain(node)

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for node in self.ids:
                if node not in self.down:
                    self.replicas[node].tick()
                    self._drain(node)
            self.deliver()

    def write(self, node: NodeId, request: int, key: bytes, value: bytes, client: int = 0,
              client_request: int = 0) -> int:
        seq = self.replicas[node].write(request, key, value, client, client_request)
        self._drain(node)
        return seq

    def read(self, node: NodeId, request: int, key: bytes, mode: object) -> None:
        self.replicas[node].read(request, key, mode)  # type: ignore[arg-type]
        self._drain(node)

    def deliver(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            message = self.queue.popleft()
            if message.recipient in self.down or type(message) in self.drop:
                continue
            self.replicas[message.recipient].step(message)
            self._drain(message.recipient)
        raise AssertionError("messages never stop")

    def _drain(self, node: NodeId) -> None:
        replica = self.replicas[node]
        ready = replica.ready()
        self.disks[node].extend(ready.persist)
        if node not in self.down:
            self.queue.extend(ready.messages)
        self.replies[node].extend(ready.replies)
        replica.advance()
        configs = []
        for request in ready.master:
            if request.call is MasterCall.RENEW:
                result = self.master.apply(0, renew_command(node))
                if decode_result(result)[1] == "ok":  # as the driver: a refusal grants none
                    replica.lease_granted(request.tick)
            elif request.call is MasterCall.JOIN:
                result = self.master.apply(0, join_command(node))
            else:
                result = self.master.apply(0, promote_command(node, request.epoch))
            configs.append(decode_result(result)[0])
        for config in configs:
            replica.configure(config)
        if replica.has_ready():
            self._drain(node)

    def outcome(self, node: NodeId, request: int) -> Reply | None:
        for reply in self.replies[node]:
            if reply.request == request:
                return reply
        return None
