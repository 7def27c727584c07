"""A cluster member: one gRPC server with Admin, health and reflection, plus /metrics.

Start-up binds every address before serving anything, so a port in use is reported as a
configuration problem rather than discovered by the first client. Shutdown (SIGTERM/SIGINT)
stops accepting calls, gives in-flight ones a short grace, then flushes buffered spans.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import socket
from collections.abc import Callable, Sequence
from functools import partial

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY

from distlab.apps.kv import KVStateMachine
from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.proto import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc, peer_pb2, peer_pb2_grpc
from distlab.runtime.config import Address, ConfigError, NodeConfig
from distlab.runtime.grpc.admin import AdminServicer
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.grpc.kv import KVServicer, Shard
from distlab.runtime.host.driver import Timing
from distlab.runtime.host.host import Host
from distlab.runtime.host.machine import AddressBook
from distlab.runtime.host.ports import LoopClock
from distlab.runtime.host.sync import SharedSync
from distlab.runtime.peer import PeerRouter, PeerServicer, PeerTransport
from distlab.runtime.raft.group import ENGINE, RaftGroup, RaftTiming
from distlab.runtime.raft.group_transport import RaftGroupReceiver, RaftGroupTransport
from distlab.runtime.raft.storage import DurableStorage
from distlab.storage import NodeStorage, StorageError, open_node_storage
from distlab.telemetry.metrics import GroupStatusCollector, MetricsServer, start_metrics_server
from distlab.telemetry.tracing import Tracing, setup_tracing

log = logging.getLogger(__name__)

# Together these keep a clean shutdown within two seconds.
SHUTDOWN_GRACE_SECONDS = 0.5
SPAN_FLUSH_TIMEOUT_MILLIS = 1000

SERVER_OPTIONS = (
    # grpc sets SO_REUSEPORT by default, which lets a second process bind a port already in use
    # and silently split the traffic; a node must own its port or fail to start.
    ("grpc.so_reuseport", 0),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


def ensure_bindable(address: Address, setting: str) -> None:
    """Raise ConfigError, with the system's reason, when `address` cannot be bound.

    gRPC reports a failed bind only as a generic error after logging its own lines, so the
    address is tried with a plain socket first to give one clear line naming the setting.
    """
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConfigError(f"{setting} {address}: {error.strerror}") from error
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As gRPC does: lets a restarted node reuse its port while old connections linger in
        # TIME_WAIT, yet still fails when another process is listening there.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as error:
            raise ConfigError(f"{setting} {address}: cannot bind ({error.strerror})") from error


def service_name(config: NodeConfig) -> str:
    return f"node-{config.node_id}"


class StartupError(Exception):
    """The node cannot start on what it found (damaged durable state); one line says why."""


def build_host(config: NodeConfig, stores: NodeStorage, peer: PeerTransport, router: PeerRouter,
               machines: Sequence[StateMachine],
               on_failure: Callable[[BaseException], None]) -> Host:
    """One Raft group per machine, each on its share of `stores`, routed through `router`.

    Raises ValueError when a group's stored snapshot cannot be read.
    """
    addresses = AddressBook({node: str(address) for node, address in config.cluster.items()},
                            on_learn=peer.learn_address)
    shared_sync = SharedSync(stores.sync, lambda: stores.shared_log.written_seq)
    timing = RaftTiming(
        driver=Timing(tick_seconds=config.raft_tick_ms / 1000,
                      snapshot_entries=config.snapshot_entries),
        election_ticks=config.raft_election_ticks)
    voters = frozenset() if config.join else frozenset(config.cluster)
    groups = []
    for index, machine in enumerate(machines):
        group_stores = stores.group(index)
        storage = DurableStorage(group_stores.log, group_stores.stable, group_stores.snapshots,
                                 shared_sync)
        group = RaftGroup.build(
            node_id=config.node_id, group=index, voters=voters, storage=storage,
            machine=machine, addresses=addresses,
            transport=partial(RaftGroupTransport, peer, index),
            clock=LoopClock(), rng=random.Random(), timing=timing, on_failure=on_failure,
        )
        RaftGroupReceiver(config.node_id, group.driver.deliver).register(router, index)
        groups.append(group)
    # One listener for the node: a peer that cannot be reached is unreachable for every
    # group, so each group's core stops streaming appends into the dead connection.
    drivers = [group.driver for group in groups]

    def report_unreachable(node: NodeId) -> None:
        for driver in drivers:
            driver.report_unreachable(node)

    peer.add_unreachable_listener(report_unreachable)
    return Host(config.node_id, ENGINE, groups, addresses, peer)


class Node:
    """The wiring of one member's services; protocol logic lives in the instances it hosts."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host: Host | None = None
        self.machines = [KVStateMachine() for _ in range(config.groups)]
        self.failed = asyncio.Event()
        self._stores: NodeStorage | None = None
        self._peer: PeerTransport | None = None
        self._tracing: Tracing | None = None
        self._server: grpc.aio.Server | None = None
        self._metrics: MetricsServer | None = None
        self._collector: GroupStatusCollector | None = None
        self._channels: PeerChannels | None = None
        self._health = health.aio.HealthServicer()

    def _on_group_failure(self, error: BaseException) -> None:
        log.error("node %d stops: a group's durable state can no longer be trusted (%s)",
                  self.config.node_id, error)
        self.failed.set()

    async def start(self) -> None:
        """Bind and serve; raises ConfigError when an address cannot be bound."""
        config = self.config
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"DATA_DIR {config.data_dir}: {error.strerror}") from error

        try:
            self._stores = stores = open_node_storage(config.data_dir, groups=config.groups)
        except StorageError as error:
            raise StartupError(str(error)) from error

        self._tracing = setup_tracing(service_name(config), config.otlp_endpoint)
        self._channels = PeerChannels(config.peers, self._tracing.client_interceptors())
        router = PeerRouter()
        self._peer = peer = PeerTransport(config.node_id, config.groups, self._channels)
        try:
            self.host = host = build_host(config, stores, peer, router, self.machines,
                                          self._on_group_failure)
        except ValueError as error:
            stores.close()
            raise StartupError(f"{config.data_dir}: cannot restore state: {error}") from error

        server = grpc.aio.server(
            interceptors=list(self._tracing.server_interceptors()), options=list(SERVER_OPTIONS)
        )
        admin_pb2_grpc.add_AdminServicer_to_server(
            AdminServicer(config, host, self._channels), server)
        peer_pb2_grpc.add_PeerServicer_to_server(
            PeerServicer(config.node_id, config.groups, router, lambda: peer.isolated_from),
            server)
        if config.unsafe_stale_reads:
            log.warning("DISTLAB_UNSAFE_STALE_READS is set: reads skip the read barrier and "
                        "may be stale (for testing the tester only)")
        shards = [Shard(group, machine) for group, machine in zip(host.groups, self.machines,
                                                                   strict=True)]
        kv_pb2_grpc.add_KVServicer_to_server(
            KVServicer(shards, unsafe_stale_reads=config.unsafe_stale_reads), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [
                admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
                peer_pb2.DESCRIPTOR.services_by_name["Peer"].full_name,
                kv_pb2.DESCRIPTOR.services_by_name["KV"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        ensure_bindable(config.listen, "LISTEN_ADDR")
        try:
            server.add_insecure_port(str(config.listen))
        except RuntimeError as error:
            raise ConfigError(
                f"LISTEN_ADDR {config.listen}: cannot bind (address in use or not available)"
            ) from error
        try:
            self._metrics = start_metrics_server(config.metrics.host, config.metrics.port)
        except OSError as error:
            await server.stop(None)
            raise ConfigError(
                f"METRICS_ADDR {config.metrics}: cannot bind ({error.strerror})"
            ) from error
        self._collector = GroupStatusCollector(ENGINE, lambda: [
            (group.group, group.status()) for group in host.groups])
        REGISTRY.register(self._collector)
        await server.start()
        self._server = server
        host.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("node %d serving gRPC on %s, metrics on %s, %d %s group(s)",
                 config.node_id, config.listen, config.metrics, config.groups, ENGINE)

    async def stop(self) -> None:
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(SHUTDOWN_GRACE_SECONDS)
        if self.host is not None:
            await self.host.stop()
        if self._peer is not None:
            await self._peer.close()
        if self._stores is not None:
            self._stores.close()
        if self._channels is not None:
            await self._channels.close()
        if self._metrics is not None:
            self._metrics.close()
        if self._collector is not None:
            REGISTRY.unregister(self._collector)
        if self._tracing is not None:
            self._tracing.shutdown(SPAN_FLUSH_TIMEOUT_MILLIS)
        log.info("node %d stopped", self.config.node_id)


async def serve_until_signalled(node: Node) -> None:
    """Run `node` until SIGTERM or SIGINT, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await node.start()
    failed = asyncio.ensure_future(node.failed.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((failed, stopped), return_when=asyncio.FIRST_COMPLETED)
        if node.failed.is_set():
            raise StartupError("a group's storage failed; the node stopped (see the log)")
    finally:
        failed.cancel()
        stopped.cancel()
        await node.stop()
