"""The chain's master as a deterministic replicated state machine (it runs on group 0).

It holds the configuration (the chain's order, the replica joining as the new tail, the
epoch that numbers them), a count of each replica's lease renewals, and the nodes that left
the cluster (retired). Its commands:

- `init(nodes)`: the first chain, every initial member in id order, at epoch 1 (taken only
  at epoch 0: every member, those that join later too, starts from the same empty state and
  learns the chain from the log); a retired node is left out of it;
- `renew(node)`: a replica's lease renewal; answered with the configuration (a retired
  node's is refused, and not counted);
- `remove(node, renewals)`: taken only if the replica has not renewed since the remover
  saw `renewals` (so a renewal that raced the removal wins), and never the chain's last
  replica (whose state is the chain's);
- `join(node)`: a replica that restarted or was removed asks to come back as the new tail:
  it leaves its place at once (it serves nothing until it is back) and becomes the joining
  replica, or waits its turn behind the one joining now (a retired node is refused);
- `promote(node, epoch)`: the joining replica has the tail's state: it becomes the tail;
- `retire(node)`: the node left the cluster (group 0's leader proposes it once the node is
  out of group 0): it leaves the chain at once, or its place as the joining or a waiting
  replica, and its later `join` and `renew` are refused; never the chain's last replica
  (refused, and nothing changes). Before the first chain, it is only remembered, so that
  `init` leaves it out;
- `admit(node)`: the node is a cluster member (again): it is no longer retired, and joins
  by itself, as any replica out of the chain does, through `join`.

Every change of the configuration moves to the next epoch. Failure detection (who stopped
renewing) needs a clock and so lives outside, on the group's leader, which proposes
`remove`; everything here depends only on the commands, in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from distlab.core.ids import NodeId
from distlab.protocols.chain.messages import ChainConfig

INIT = "init"
RENEW = "renew"
REMOVE = "remove"
JOIN = "join"
PROMOTE = "promote"
RETIRE = "retire"
ADMIT = "admit"


def init_command(nodes: Iterable[NodeId]) -> bytes:
    return _encode({"op": INIT, "node": 0, "nodes": sorted(int(node) for node in nodes)})


def renew_command(node: NodeId) -> bytes:
    return _encode({"op": RENEW, "node": int(node)})


def remove_command(node: NodeId, renewals: int) -> bytes:
    return _encode({"op": REMOVE, "node": int(node), "renewals": renewals})


def join_command(node: NodeId) -> bytes:
    return _encode({"op": JOIN, "node": int(node)})


def promote_command(node: NodeId, epoch: int) -> bytes:
    return _encode({"op": PROMOTE, "node": int(node), "epoch": epoch})


def retire_command(node: NodeId) -> bytes:
    return _encode({"op": RETIRE, "node": int(node)})


def admit_command(node: NodeId) -> bytes:
    return _encode({"op": ADMIT, "node": int(node)})


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True).encode()


def config_to_dict(config: ChainConfig) -> dict[str, Any]:
    return {"epoch": config.epoch, "chain": [int(node) for node in config.chain],
            "joining": None if config.joining is None else int(config.joining)}


def config_from_dict(body: dict[str, Any]) -> ChainConfig:
    joining = body.get("joining")
    return ChainConfig(int(body["epoch"]), tuple(NodeId(int(node)) for node in body["chain"]),
                       None if joining is None else NodeId(int(joining)))


def decode_result(result: bytes) -> tuple[ChainConfig, str]:
    """A command's answer: the configuration after it, and what happened ("ok", or why not)."""
    body = json.loads(result)
    return config_from_dict(body["config"]), str(body["outcome"])


class ChainMaster:
    """Implements `StateMachine`; starts at epoch 0 with no chain, until `init`."""

    def __init__(self) -> None:
        self.config = ChainConfig(0, ())
        self.renewals: dict[NodeId, int] = {}
        # Replicas that asked to join while another was joining, in order.
        self.waiting: list[NodeId] = []
        # Nodes that left the cluster: kept out of the chain until they are admitted again.
        self.retired: set[NodeId] = set()
        self.reconfigurations = 0

    def apply(self, index: int, command: bytes) -> bytes:
        try:
            body = json.loads(command)
            op = body["op"]
            node = NodeId(int(body["node"]))
        except (ValueError, KeyError, TypeError):
            return self._answer("malformed command")
        if op == INIT:
            return self._answer(self._init(body.get("nodes", [])))
        if op == RENEW:
            if node in self.retired:
                return self._answer(_retired(node))
            self.renewals[node] = self.renewals.get(node, 0) + 1
            return self._answer("ok")
        if op == REMOVE:
            return self._answer(self._remove(node, int(body.get("renewals", -1))))
        if op == JOIN:
            return self._answer(self._join(node))
        if op == PROMOTE:
            return self._answer(self._promote(node, int(body.get("epoch", -1))))
        if op in (RETIRE, ADMIT) and node <= 0:
            return self._answer("malformed command")
        if op == RETIRE:
            return self._answer(self._retire(node))
        if op == ADMIT:
            self.retired.discard(node)
            return self._answer("ok")
        return self._answer(f"unknown operation {op!r}")

    def _init(self, nodes: list[Any]) -> str:
        if self.config.epoch != 0:
            return "the chain is set up already"
        try:
            chain = tuple(sorted({NodeId(int(node)) for node in nodes} - self.retired))
        except (ValueError, TypeError):
            return "malformed command"
        if not chain or any(node <= 0 for node in chain):
            return "a chain needs members"
        self._move_to(ChainConfig(1, chain))
        return "ok"

    def _remove(self, node: NodeId, renewals: int) -> str:
        if self.renewals.get(node, 0) != renewals:
            return "renewed since"
        return self._take_out(node)

    def _retire(self, node: NodeId) -> str:
        if self.config.epoch != 0:
            outcome = self._take_out(node)
            if outcome not in ("ok", "not in the chain"):
                return outcome
        self.retired.add(node)
        return "ok"

    def _take_out(self, node: NodeId) -> str:
        """`node` out of the chain (a new epoch), or out of its place as the joining replica
        or a waiting one."""
        config = self.config
        if node in self.waiting:
            self.waiting.remove(node)
            return "ok"
        if node == config.joining:
            self._move_to(ChainConfig(config.epoch + 1, config.chain, self._next_waiting()))
            return "ok"
        if node not in config.chain:
            return "not in the chain"
        if len(config.chain) == 1:
            return "the chain's last replica stays"
        self._move_to(ChainConfig(config.epoch + 1,
                                  tuple(n for n in config.chain if n != node), config.joining))
        return "ok"

    def _join(self, node: NodeId) -> str:
        config = self.config
        if config.epoch == 0:
            return "the chain is not set up yet"
        if node in self.retired:
            return _retired(node)
        if node == config.joining:
            return "ok"
        if config.chain == (node,):
            return "ok"  # the last replica keeps its place and its state
        if node in self.waiting:
            return f"waiting behind n{config.joining}"
        chain = tuple(n for n in config.chain if n != node)
        if config.joining is not None:
            self.waiting.append(node)
            if chain != config.chain:
                self._move_to(ChainConfig(config.epoch + 1, chain, config.joining))
            return f"waiting behind n{config.joining}"
        self._move_to(ChainConfig(config.epoch + 1, chain, node))
        return "ok"

    def _promote(self, node: NodeId, epoch: int) -> str:
        config = self.config
        if node != config.joining or epoch != config.epoch:
            return "not joining in that epoch"
        self._move_to(ChainConfig(config.epoch + 1, (*config.chain, node),
                                  self._next_waiting()))
        return "ok"

    def _next_waiting(self) -> NodeId | None:
        return self.waiting.pop(0) if self.waiting else None

    def _move_to(self, config: ChainConfig) -> None:
        assert config.epoch == self.config.epoch + 1
        assert config.chain, "a chain never loses its last replica"
        self.config = config
        self.reconfigurations += 1

    def _answer(self, outcome: str) -> bytes:
        return _encode({"config": config_to_dict(self.config), "outcome": outcome})

    def snapshot(self) -> bytes:
        return _encode({"config": config_to_dict(self.config),
                        "renewals": {str(node): count for node, count in self.renewals.items()},
                        "waiting": [int(node) for node in self.waiting],
                        "retired": sorted(int(node) for node in self.retired),
                        "reconfigurations": self.reconfigurations})

    def restore(self, data: bytes) -> None:
        body = json.loads(data)
        self.config = config_from_dict(body["config"])
        self.renewals = {NodeId(int(node)): int(count)
                         for node, count in body["renewals"].items()}
        self.waiting = [NodeId(int(node)) for node in body.get("waiting", [])]
        # Snapshots taken before nodes could retire have none.
        self.retired = {NodeId(int(node)) for node in body.get("retired", [])}
        self.reconfigurations = int(body.get("reconfigurations", 0))


def _retired(node: NodeId) -> str:
    return f"n{node} is retired: it left the cluster"
