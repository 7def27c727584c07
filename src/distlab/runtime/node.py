"""A cluster member: one gRPC server with Admin, health and reflection, plus /metrics.

Start-up binds every address before serving anything, so a port in use is reported as a
configuration problem rather than discovered by the first client. Shutdown (SIGTERM/SIGINT)
stops accepting calls, gives in-flight ones a short grace, then flushes buffered spans.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY

from distlab.apps.kv import KVStateMachine
from distlab.proto import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc, raft_pb2, raft_pb2_grpc
from distlab.runtime.config import Address, ConfigError, NodeConfig
from distlab.runtime.grpc.admin import AdminServicer
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.grpc.kv import KVServicer
from distlab.runtime.raft.driver import RaftDriver, Timing
from distlab.runtime.raft.storage import DurableStorage
from distlab.runtime.raft.transport import RaftServicer, RaftTransport
from distlab.storage import StorageError
from distlab.telemetry.metrics import EngineStatusCollector, MetricsServer, start_metrics_server
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


class Node:
    """The wiring of one member's services; protocol logic lives in the engines it hosts."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.driver: RaftDriver | None = None
        self.machine = KVStateMachine()
        self._tracing: Tracing | None = None
        self._server: grpc.aio.Server | None = None
        self._metrics: MetricsServer | None = None
        self._collector: EngineStatusCollector | None = None
        self._channels: PeerChannels | None = None
        self._health = health.aio.HealthServicer()

    async def start(self) -> None:
        """Bind and serve; raises ConfigError when an address cannot be bound."""
        config = self.config
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"DATA_DIR {config.data_dir}: {error.strerror}") from error

        try:
            storage = DurableStorage.open(config.data_dir)
        except StorageError as error:
            raise StartupError(str(error)) from error

        self._tracing = setup_tracing(service_name(config), config.otlp_endpoint)
        self._channels = PeerChannels(config.peers, self._tracing.client_interceptors())
        transport = RaftTransport(self._channels)
        timing = Timing(tick_seconds=config.raft_tick_ms / 1000,
                        election_ticks=config.raft_election_ticks,
                        snapshot_entries=config.snapshot_entries)
        try:
            self.driver = driver = RaftDriver(
                config.node_id, {node: str(address) for node, address in config.cluster.items()},
                storage, self.machine, transport, timing,
                bootstrap=not config.join, learn_address=transport.learn_address,
            )
        except ValueError as error:
            storage.close()
            raise StartupError(f"{config.data_dir}: cannot restore state: {error}") from error

        server = grpc.aio.server(
            interceptors=list(self._tracing.server_interceptors()), options=list(SERVER_OPTIONS)
        )
        admin = AdminServicer(config, driver.status, self._channels, driver)
        admin_pb2_grpc.add_AdminServicer_to_server(admin, server)
        raft_pb2_grpc.add_RaftServicer_to_server(
            RaftServicer(config.node_id, driver.deliver, driver.isolated_from), server)
        if config.unsafe_stale_reads:
            log.warning("DISTLAB_UNSAFE_STALE_READS is set: reads skip the read barrier and "
                        "may be stale (for testing the tester only)")
        kv_pb2_grpc.add_KVServicer_to_server(
            KVServicer(driver, self.machine, unsafe_stale_reads=config.unsafe_stale_reads),
            server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [
                admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
                raft_pb2.DESCRIPTOR.services_by_name["Raft"].full_name,
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
        self._collector = EngineStatusCollector(driver.status)
        REGISTRY.register(self._collector)
        await server.start()
        self._server = server
        driver.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("node %d serving gRPC on %s, metrics on %s",
                 config.node_id, config.listen, config.metrics)

    async def stop(self) -> None:
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(SHUTDOWN_GRACE_SECONDS)
        if self.driver is not None:
            await self.driver.stop()
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
    try:
        await stop.wait()
    finally:
        await node.stop()
