"""A cluster of `distlab node` processes on loopback: what `distlab up` and process tests run.

Each node is a real child process with its own ports, data directory and log file. The
cluster description is written to `cluster.json` so other commands (and people) can find the
nodes without being told their ports. It lists the members the cluster has now: `distlab
cluster add` and `remove` rewrite it (`record_member`, `forget_member`), and a cluster
started again on the same directory (`LocalCluster.restart`) runs exactly those members, on
the same ports and data directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distlab.core.ids import NodeId
from distlab.ops.loopback import LOOPBACK, free_loopback_ports
from distlab.runtime.health import is_serving
from distlab.storage.errors import StorageError
from distlab.storage.layout import WAL_DIRECTORY
from distlab.storage.wal import check_not_open
from distlab.wire.addresses import Address, parse_address
from distlab.wire.channels import open_channel

CLUSTER_FILE = "cluster.json"
STOP_TIMEOUT_SECONDS = 5.0


class ClusterStartError(RuntimeError):
    """A node did not come up; the message says which and why."""


class ClusterFileError(ValueError):
    """A cluster.json that cannot be used; the message says which and why."""


@dataclass(slots=True)
class LocalNode:
    node_id: NodeId
    address: Address
    metrics_address: Address
    data_dir: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    join: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def describe(self) -> dict[str, Any]:
        return {
            "id": int(self.node_id),
            "address": str(self.address),
            "metrics_address": str(self.metrics_address),
            "pid": self.pid,
            "data_dir": str(self.data_dir),
            "log": str(self.log_path),
            "join": self.join,
        }

    def has_state(self) -> bool:
        """Whether the node's data directory holds anything (it ran before)."""
        return self.data_dir.is_dir() and any(self.data_dir.iterdir())


@dataclass(frozen=True, slots=True)
class NodeExit:
    """A node process that ended, and what its log said last."""

    node_id: NodeId
    pid: int
    returncode: int
    last_log_line: str

    def describe(self) -> str:
        if self.returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                how = f"was killed by signal {-self.returncode}"
        else:
            how = f"exited with status {self.returncode}"
        return f"node {self.node_id} (pid {self.pid}) {how}; last log line: {self.last_log_line}"


async def wait_serving(address: Address | str, timeout_seconds: float,
                       gave_up: Callable[[], str | None] = lambda: None) -> str | None:
    """Poll the server's health until it serves (None), or say why not: what `gave_up`
    reports (a process that exited, say), or that the time ran out."""
    deadline = time.monotonic() + timeout_seconds
    async with open_channel(address) as channel:
        while True:
            problem = gave_up()
            if problem is not None:
                return problem
            if await is_serving(channel, deadline_seconds=0.5):
                return None
            if time.monotonic() > deadline:
                return f"did not serve on {address} within {timeout_seconds:.0f} s"
            await asyncio.sleep(0.05)  # polling interval between health probes


@dataclass(slots=True)
class LocalCluster:
    """Nodes hosting `groups` replicated groups of `engine` (None: the node's default)."""

    data_dir: Path
    nodes: dict[NodeId, LocalNode] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    groups: int = 1
    engine: str | None = None
    # Members this cluster does not start (see `restart`): still in CLUSTER_NODES and in
    # cluster.json, so the others reach them and they can be started by hand.
    absent: dict[NodeId, LocalNode] = field(default_factory=dict)
    # Node -> an offset of its wall clock, in ms (its CLOCK_SKEW_MS), for TrueTime
    # experiments; an experiment of one run, so not kept in cluster.json.
    clock_skews: dict[NodeId, float] = field(default_factory=dict)

    @classmethod
    def plan(cls, size: int, data_dir: Path, extra_env: Mapping[str, str] | None = None, *,
             groups: int = 1, engine: str | None = None) -> LocalCluster:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, not {size}")
        if groups < 1:
            raise ValueError(f"a cluster hosts at least one group, not {groups}")
        ports = free_loopback_ports(2 * size)
        cluster = cls(data_dir=data_dir.resolve(), extra_env=dict(extra_env or {}),
                      groups=groups, engine=engine)
        for index in range(size):
            node_id = NodeId(index + 1)
            cluster.nodes[node_id] = LocalNode(
                node_id=node_id,
                address=Address(LOOPBACK, ports[2 * index]),
                metrics_address=Address(LOOPBACK, ports[2 * index + 1]),
                data_dir=cluster.data_dir / f"node-{node_id}",
                log_path=cluster.data_dir / f"node-{node_id}.log",
            )
        return cluster

    @classmethod
    def restart(cls, data_dir: Path, extra_env: Mapping[str, str] | None = None
                ) -> LocalCluster | None:
        """The cluster `data_dir/cluster.json` describes, to start again as it was left: its
        members now, on their ports and data directories; None when there is no such file or
        none of its nodes has state (a new cluster should be planned instead).

        A member whose data directory is empty is left out (`absent`): started without its
        state it would count as a voter that forgot what it acknowledged, which can lose
        committed writes. Raises ClusterFileError when the file cannot be read.
        """
        data_dir = data_dir.resolve()
        path = data_dir / CLUSTER_FILE
        if not path.exists():
            return None
        document = read_cluster_file(path)
        try:
            cluster = cls(data_dir=data_dir, extra_env=dict(extra_env or {}),
                          groups=int(document.get("groups") or 1),
                          engine=str(document["engine"]) if document.get("engine") else None)
            for entry in document["nodes"]:
                node = cluster.node_from(entry)
                cluster.nodes[node.node_id] = node
        except (KeyError, TypeError, ValueError) as error:
            raise ClusterFileError(f"{path} is not a cluster file of `distlab up`: {error}"
                                   ) from error
        if not any(node.has_state() for node in cluster.nodes.values()):
            return None
        for node_id in [n for n, node in cluster.nodes.items() if not node.has_state()]:
            cluster.absent[node_id] = cluster.nodes.pop(node_id)
        return cluster

    def node_from(self, entry: Mapping[str, Any]) -> LocalNode:
        """A node of a cluster.json entry; fields a member added by hand lacks get their
        defaults (data and log under this cluster's directory, a free metrics port)."""
        node_id = NodeId(int(entry["id"]))
        if node_id <= 0:
            raise ValueError(f"node id {node_id} is not positive")
        metrics = entry.get("metrics_address")
        return LocalNode(
            node_id=node_id,
            address=parse_address(str(entry["address"]), f"node {node_id}'s address"),
            metrics_address=(parse_address(str(metrics), f"node {node_id}'s metrics address")
                             if metrics else Address(LOOPBACK, free_loopback_ports(1)[0])),
            data_dir=Path(entry.get("data_dir") or self.data_dir / f"node-{node_id}"),
            log_path=Path(entry.get("log") or self.data_dir / f"node-{node_id}.log"),
            join=bool(entry.get("join", False)),
        )

    def plan_extra_node(self) -> LocalNode:
        """Plan one more member (not started): it joins with JOIN=true once added."""
        node_id = NodeId(max(self.nodes) + 1)
        grpc_port, metrics_port = free_loopback_ports(2)
        node = LocalNode(
            node_id=node_id,
            address=Address(LOOPBACK, grpc_port),
            metrics_address=Address(LOOPBACK, metrics_port),
            data_dir=self.data_dir / f"node-{node_id}",
            log_path=self.data_dir / f"node-{node_id}.log",
            join=True,
        )
        self.nodes[node_id] = node
        return node

    @property
    def addresses(self) -> dict[NodeId, Address]:
        """Node id -> gRPC address, for clients and the tools of distlab.ops."""
        return {node_id: node.address for node_id, node in self.nodes.items()}

    @property
    def cluster_nodes(self) -> str:
        """The CLUSTER_NODES value every member is started with."""
        return ",".join(f"{node.node_id}={node.address}" for node in self._every_node())

    def _every_node(self) -> list[LocalNode]:
        return sorted([*self.nodes.values(), *self.absent.values()],
                      key=lambda node: node.node_id)

    async def start_node(self, node_id: NodeId) -> None:
        """Spawn the node's process; ClusterStartError if its data directory is in use."""
        node = self.nodes[node_id]
        node.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # The node would fail the same way, but its one line would land in a log file that
            # the process already running there keeps writing to.
            check_not_open(node.data_dir / WAL_DIRECTORY)
        except StorageError as error:
            raise ClusterStartError(f"node {node_id} cannot start: {error}") from None
        env = {
            **os.environ,
            **self.extra_env,
            "NODE_ID": str(node_id),
            "CLUSTER_NODES": self.cluster_nodes,
            "LISTEN_ADDR": str(node.address),
            "METRICS_ADDR": str(node.metrics_address),
            "DATA_DIR": str(node.data_dir),
            "GROUPS": str(self.groups),
            "PYTHONUNBUFFERED": "1",
            # A crash in a C extension (a segfault) prints every thread's stack into the
            # node's log, instead of leaving only an exit status.
            "PYTHONFAULTHANDLER": "1",
        }
        if self.engine is not None:
            env["ENGINE"] = self.engine
        if node_id in self.clock_skews:
            env["CLOCK_SKEW_MS"] = f"{self.clock_skews[node_id]:g}"
        if node.join:
            env["JOIN"] = "true"
        with node.log_path.open("ab") as log_file:
            node.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "distlab", "node",
                env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            )

    async def wait_serving(self, node_id: NodeId, timeout_seconds: float) -> None:
        """Poll health until the node serves; fail early if its process exits."""
        node = self.nodes[node_id]

        def exited() -> str | None:
            if node.process is not None and node.process.returncode is not None:
                return (f"exited with status {node.process.returncode}: "
                        f"{last_line(node.log_path)}")
            return None

        problem = await wait_serving(node.address, timeout_seconds, exited)
        if problem is not None:
            raise ClusterStartError(f"node {node_id} {problem} (log: {node.log_path})")

    async def start(self, timeout_seconds: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for node_id in self.nodes:
                await self.start_node(node_id)
            await asyncio.gather(*(self.wait_serving(n, timeout_seconds) for n in self.nodes))
        except ClusterStartError:
            await self.stop()
            raise
        self.write_description()

    def write_description(self) -> Path:
        path = self.data_dir / CLUSTER_FILE
        write_cluster_file(path, self.describe())
        return path

    def describe(self) -> dict[str, Any]:
        return {"groups": self.groups, "engine": self.engine,
                "nodes": [node.describe() for node in self._every_node()]}

    async def stop_node(self, node_id: NodeId, sig: int = signal.SIGTERM) -> int | None:
        """Signal one node and wait for it; SIGKILL if it outlives the stop timeout."""
        process = self.nodes[node_id].process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            return await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            return await process.wait()

    async def stop(self) -> None:
        await asyncio.gather(*(self.stop_node(node_id) for node_id in self.nodes))

    async def watch_exits(self, on_exit: Callable[[NodeExit], None]) -> None:
        """Call `on_exit` as each node process started ends, until every one has or the
        watch is cancelled (cancel it before stopping the nodes on purpose). A node that
        ended before the watch began, between its start and this call, is reported at once:
        nothing stopped it on purpose."""

        async def watch(node: LocalNode, process: asyncio.subprocess.Process) -> None:
            returncode = await process.wait()
            on_exit(NodeExit(node.node_id, process.pid, returncode, last_line(node.log_path)))

        await asyncio.gather(*(
            watch(node, node.process) for node in self.nodes.values()
            if node.process is not None))


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def read_cluster_file(path: Path) -> dict[str, Any]:
    """The document of a cluster.json; raises ClusterFileError saying what is wrong."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise ClusterFileError(f"cannot read {path}: {error.strerror}") from error
    except ValueError as error:
        raise ClusterFileError(f"{path} is not a cluster file of `distlab up`: {error}"
                               ) from error
    if not isinstance(document, dict) or not isinstance(document.get("nodes"), list):
        raise ClusterFileError(f"{path} is not a cluster file of `distlab up`: no node list")
    return document


def write_cluster_file(path: Path, document: Mapping[str, Any]) -> None:
    """Replace `path` atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)


def record_member(path: Path, node_id: NodeId, address: str) -> None:
    """Note in the cluster file at `path` that `node_id`, at `address`, is now a member (a
    node that joined: restarted with JOIN, from `DIR/node-<id>` unless the file says
    otherwise)."""
    document = read_cluster_file(path)
    nodes = document["nodes"]
    entry = next((node for node in nodes if node.get("id") == int(node_id)), None)
    if entry is None:
        nodes.append({"id": int(node_id), "address": address, "metrics_address": None,
                      "pid": None, "data_dir": None, "log": None, "join": True})
        nodes.sort(key=lambda node: int(node["id"]))
    else:
        entry["address"] = address
    write_cluster_file(path, document)


def forget_member(path: Path, node_id: NodeId) -> None:
    """Drop `node_id` from the cluster file at `path`: it is no longer a member."""
    document = read_cluster_file(path)
    document["nodes"] = [node for node in document["nodes"] if node.get("id") != int(node_id)]
    write_cluster_file(path, document)
