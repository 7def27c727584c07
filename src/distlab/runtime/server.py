"""One server start-up for every distlab process (node, MapReduce coordinator and worker).

A `Server` is one gRPC port with the process's services, gRPC health and reflection (v1 and
v1alpha), the tracing interceptors, and optionally the Prometheus /metrics endpoint on a
second port:

    server = Server(config.listen, tracing=tracing, metrics=config.metrics)
    server.add_service(admin_pb2.DESCRIPTOR.services_by_name["Admin"],
                       admin_pb2_grpc.add_AdminServicer_to_server, AdminServicer(...))
    server.add_collector(EngineStatusCollector(driver.status))
    server.on_stop(driver.stop)
    await server.start()       # binds every address first; ConfigError names the setting
    ...
    await server.stop()        # health NOT_SERVING, no new calls, the on_drain steps, grace
                               # for in-flight calls, the on_stop steps (last added first),
                               # metrics, then the span flush

Start-up binds every address before serving anything, so a port in use is reported as a
configuration problem rather than discovered by the first client. Shutdown stops accepting
calls, ends the calls that never end by themselves (the peers' long-lived streams), gives the
other in-flight ones a short grace, runs the process's own steps, and flushes buffered spans
last, so the spans of those steps are exported too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from distlab.runtime.reflection import enable_reflection
from distlab.wire.addresses import Address, ConfigError
from distlab.wire.channels import SERVER_KEEPALIVE_OPTIONS

# Prometheus is imported when a server has metrics to serve or collectors to register, not
# with this module: a process without either (a MapReduce worker) starts faster without it.
if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from distlab.telemetry.metrics import MetricsServer
    from distlab.telemetry.tracing import Tracing

log = logging.getLogger(__name__)

# Together these keep a clean shutdown within two seconds.
SHUTDOWN_GRACE_SECONDS = 0.5
SPAN_FLUSH_TIMEOUT_MILLIS = 1000

SERVER_OPTIONS: Sequence[tuple[str, Any]] = (
    # grpc sets SO_REUSEPORT by default, which lets a second process bind a port already in use
    # and silently split the traffic; a server must own its port or fail to start.
    ("grpc.so_reuseport", 0),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    *SERVER_KEEPALIVE_OPTIONS,
)

# The logger of grpc's asyncio server, and the start of the message it logs (at ERROR, with a
# traceback) when a handler's answer cannot be sent.
GRPC_SERVER_LOGGER = "grpc._cython.cygrpc"
UNSENDABLE_ANSWER = "ExecuteBatchError raised in core by servicer method"

Servicer = TypeVar("Servicer")
T = TypeVar("T")
StopStep = Callable[[], Awaitable[object] | object]


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
        # As gRPC does: lets a restarted server reuse its port while old connections linger in
        # TIME_WAIT, yet still fails when another process is listening there.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as error:
            raise ConfigError(f"{setting} {address}: cannot bind ({error.strerror})") from error


class UnsendableAnswerFilter(logging.Filter):
    """Turns grpc's ExecuteBatchError report of an answer it could not send into a debug line.

    The batch fails because the call had already ended: the client's deadline passed, or it
    cancelled, while the handler was finishing (under load, at the deadline of every slow
    request). grpc drops the error silently once it has seen the call end, and logs it with
    a traceback when that news is still on its way inside grpc; either way the answer is
    gone and the client holds DEADLINE_EXCEEDED or CANCELLED, an outcome it handles (a
    retried write is deduplicated by its request id). Nothing is wrong with the node.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(UNSENDABLE_ANSWER)):
            return True
        method = record.getMessage().removeprefix(UNSENDABLE_ANSWER).strip(" []")
        record.msg = "the answer of %s was not sent: the call had ended (deadline or cancel)"
        record.args = (method or "a call",)
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_unsendable_answers() -> None:
    """Install `UnsendableAnswerFilter` on grpc's server logger, once per process."""
    logger = logging.getLogger(GRPC_SERVER_LOGGER)
    if not any(isinstance(existing, UnsendableAnswerFilter) for existing in logger.filters):
        logger.addFilter(UnsendableAnswerFilter())


class _MethodTable(grpc.GenericRpcHandler):
    """Every method of the services added to a server, in one table looked up by name.

    grpc.aio's server asks its generic handlers one after another for each call it accepts;
    one handler per service would put the KV service's methods behind every service added
    before it. Registered methods (grpc's other way) cost more: for every call it accepts,
    the server loop waits (`asyncio.wait`) on one pending request per registered method,
    and with a node's dozens of methods that wait cost a write more CPU than every other
    step of the KV service's own Python.
    """

    def __init__(self) -> None:
        self._methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails
                ) -> grpc.RpcMethodHandler[Any, Any] | None:
        return self._methods.get(handler_call_details.method)

    def add(self, service: str, handlers: Mapping[str, Any]) -> None:
        for name, handler in handlers.items():
            self._methods[f"/{service}/{name}"] = handler


class _TableFiller:
    """The server as the generated `add_*_to_server` functions see it: they hand it each
    service twice, as a generic handler and as registered methods; the methods go into the
    table and the generic handler, which serves the same ones, is dropped."""

    def __init__(self, table: _MethodTable) -> None:
        self._table = table

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Dropped: the registered methods given alongside are in the table."""

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        self._table.add(service, handlers)


class Server:
    """A process's gRPC server, its health and reflection, /metrics, and orderly shutdown.

    `listen` may have port 0 (any free port; `address` tells the one bound). `tracing`, when
    given, provides the server interceptors (unless `interceptors` replaces them) and is shut
    down (its spans flushed) last in `stop`. `listen_setting` and `metrics_setting` name the
    settings in error messages.
    """

    def __init__(
        self,
        listen: Address,
        *,
        tracing: Tracing | None = None,
        interceptors: Sequence[Any] | None = None,
        metrics: Address | None = None,
        listen_setting: str = "LISTEN_ADDR",
        metrics_setting: str = "METRICS_ADDR",
        shutdown_grace_seconds: float = SHUTDOWN_GRACE_SECONDS,
    ) -> None:
        self._listen = listen
        self._tracing = tracing
        self._metrics_address = metrics
        self._listen_setting = listen_setting
        self._metrics_setting = metrics_setting
        self._grace = shutdown_grace_seconds
        if interceptors is None:
            interceptors = tracing.server_interceptors() if tracing is not None else ()
        quiet_unsendable_answers()
        self._server = grpc.aio.server(interceptors=list(interceptors),
                                       options=list(SERVER_OPTIONS))
        self._methods = _MethodTable()
        self._server.add_generic_rpc_handlers((self._methods,))
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._table_filler())
        self._service_names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self._collectors: list[Collector] = []
        self._registered: list[Collector] = []
        self._stop_steps: list[StopStep] = []
        self._drain_steps: list[StopStep] = []
        self._metrics: MetricsServer | None = None
        self._address: Address | None = None
        self._started = False
        self._stopped = False

    @property
    def address(self) -> Address:
        """The address bound (with the port chosen when `listen` asked for port 0)."""
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address

    @property
    def metrics_port(self) -> int | None:
        return self._metrics.port if self._metrics is not None else None

    def add_service(self, service: ServiceDescriptor,
                    add_to_server: Callable[[Servicer, grpc.aio.Server], None],
                    servicer: Servicer) -> None:
        """Serve `servicer` (listed by reflection under `service`'s full name)."""
        assert not self._started, "services are added before the server starts"
        add_to_server(servicer, self._table_filler())
        self._service_names.append(service.full_name)

    def _table_filler(self) -> grpc.aio.Server:
        return cast(grpc.aio.Server, _TableFiller(self._methods))

    def add_collector(self, collector: Collector) -> None:
        """A Prometheus collector registered while the server runs (needs `metrics`)."""
        assert not self._started, "collectors are added before the server starts"
        self._collectors.append(collector)

    def on_stop(self, step: StopStep) -> None:
        """Run `step` (a function, or one returning an awaitable) in `stop`, after gRPC has
        stopped and before the spans are flushed; the steps run last added first."""
        self._stop_steps.append(step)

    def on_drain(self, step: StopStep) -> None:
        """Run `step` in `stop` once the server takes no new calls, before the grace: for
        calls that would otherwise hold the whole grace, such as streams that never end by
        themselves."""
        self._drain_steps.append(step)

    async def start(self) -> Address:
        """Bind every address, then serve; raises ConfigError naming the setting that cannot
        be bound (nothing is left running then)."""
        assert not self._started, "a server starts once"
        self._started = True
        enable_reflection(self._service_names, self._table_filler())
        ensure_bindable(self._listen, self._listen_setting)
        try:
            port = self._server.add_insecure_port(str(self._listen))
        except RuntimeError as error:
            raise ConfigError(f"{self._listen_setting} {self._listen}: cannot bind (address in "
                              "use or not available)") from error
        self._address = Address(self._listen.host, port)
        if self._metrics_address is not None:
            from distlab.telemetry.metrics import start_metrics_server

            try:
                self._metrics = start_metrics_server(self._metrics_address.host,
                                                     self._metrics_address.port)
            except OSError as error:
                await self._server.stop(None)
                raise ConfigError(f"{self._metrics_setting} {self._metrics_address}: cannot "
                                  f"bind ({error.strerror})") from error
        if self._collectors:
            from prometheus_client import REGISTRY

            for collector in self._collectors:
                REGISTRY.register(collector)
                self._registered.append(collector)
        await self._server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        return self._address

    async def stop(self) -> None:
        """Stop serving and release everything; safe to call once whatever `start` did."""
        if self._stopped:
            return
        self._stopped = True
        await self._health.enter_graceful_shutdown()
        # The metrics endpoint goes first, on a thread: its server notices a shutdown only at
        # its next poll, up to half a second later, which would otherwise add to the exit.
        metrics_closed = (asyncio.ensure_future(asyncio.to_thread(self._metrics.close))
                          if self._metrics is not None else None)
        stopping = asyncio.ensure_future(self._server.stop(self._grace))
        await asyncio.sleep(0)  # gRPC refuses new calls from here on
        for drain in self._drain_steps:
            outcome = drain()
            if inspect.isawaitable(outcome):
                await outcome
        await stopping
        for step in reversed(self._stop_steps):
            outcome = step()
            if inspect.isawaitable(outcome):
                await outcome
        if metrics_closed is not None:
            await metrics_closed
        if self._registered:
            from prometheus_client import REGISTRY

            for collector in self._registered:
                REGISTRY.unregister(collector)
            self._registered.clear()
        if self._tracing is not None:
            self._tracing.shutdown(SPAN_FLUSH_TIMEOUT_MILLIS)

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_until_signalled(serve: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """`serve(stop)`, where `stop` is set on SIGTERM or SIGINT: a process's main loop."""
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stop.set)
    try:
        return await serve(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.remove_signal_handler(signum)
