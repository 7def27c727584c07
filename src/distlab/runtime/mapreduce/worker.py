"""The worker process: asks the coordinator for tasks, runs them, serves its map output.

A map task's output stays here, in R partition files under the work directory, served to
reducers by Worker.FetchPartition. A reduce task pulls its partition from every map task's
worker (concurrently), merges, reduces and writes mr-out-<r> into the shared output
directory. Application code runs in a thread, so heartbeats and fetches from other workers
carry on while it computes (or stalls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from opentelemetry import trace

from distlab.apps.mr.loader import AppError, load_app
from distlab.proto import mapreduce_pb2 as pb
from distlab.proto import mapreduce_pb2_grpc as pb_grpc
from distlab.protocols.mapreduce import MapOutput, TaskAssignment, TaskKind
from distlab.runtime.mapreduce import convert
from distlab.runtime.mapreduce.client import QUICK_RECONNECT_OPTIONS
from distlab.runtime.mapreduce.taskio import (
    merge_partitions,
    partition_path,
    read_split,
    reduce_lines,
    run_map,
    write_output,
    write_partitions,
)
from distlab.runtime.mapreduce.telemetry import (
    context_from_traceparent,
    coordinator_client_interceptors,
)
from distlab.runtime.server import Server
from distlab.telemetry.tracing import Tracing, setup_tracing
from distlab.wire.addresses import Address, ConfigError
from distlab.wire.channels import open_channel

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
RPC_DEADLINE_SECONDS = 5.0
# RequestTask is long-polled by the coordinator; its deadline must outlast the hold.
REQUEST_TASK_DEADLINE_SECONDS = 5.0
FETCH_DEADLINE_SECONDS = 10.0
FETCH_TRIES = 3
FETCH_RETRY_DELAY_SECONDS = 0.2
FETCH_CONCURRENCY = 8
RETRY_DELAY_SECONDS = 0.2
SWITCH_INTERVAL_SECONDS = 0.001
# Reducers fetching from a stopping worker retry elsewhere; a short grace is enough.
WORKER_SHUTDOWN_GRACE_SECONDS = 0.2

T = TypeVar("T")


class CoordinatorUnreachable(RuntimeError):
    """The coordinator did not answer for the whole give-up period."""


class _StoppedUnanswered(Exception):
    """The worker is stopping and the coordinator did not answer: nothing is retried."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    worker_id: str
    coordinator: Address
    listen: Address
    work_dir: Path
    advertise_host: str | None = None
    give_up_after: float = 10.0
    otlp_endpoint: str | None = None


def service_name(worker_id: str) -> str:
    return f"mr-worker-{worker_id}"


class FetchServicer(pb_grpc.WorkerServicer):
    """Serves this worker's map output to reducers, in chunks."""

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir

    async def FetchPartition(
        self,
        request: pb.FetchPartitionRequest,
        context: grpc.aio.ServicerContext[pb.FetchPartitionRequest, pb.PartitionChunk],
    ) -> AsyncIterator[pb.PartitionChunk]:
        path = partition_path(self._work_dir, request.job_id, request.map_index, request.attempt,
                              request.reduce_index)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no output of map {request.map_index} attempt {request.attempt} of job "
                f"{request.job_id} here",
            )
        with handle:
            total = os.fstat(handle.fileno()).st_size
            sent = 0
            while True:
                data = handle.read(CHUNK_BYTES)
                sent += len(data)
                last = sent >= total
                yield pb.PartitionChunk(data=data, total_bytes=total if last else 0, last=last)
                if last:
                    return


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.address = ""
        self._tracing: Tracing | None = None
        self._server: Server | None = None
        self._coordinator_channel: grpc.aio.Channel | None = None
        self._coordinator: pb_grpc.CoordinatorAsyncStub | None = None
        self._peers: dict[str, grpc.aio.Channel] = {}
        self._last_contact = time.monotonic()
        # Until the coordinator first answers, calls wait for the channel to connect instead
        # of failing at once and being retried later: a worker started together with its
        # coordinator gets its first task as soon as the coordinator serves. Afterwards they
        # fail fast, so that the give-up period is measured from the last answer.
        self._reached = False
        self._stop: asyncio.Event | None = None
        self._told_to_exit = asyncio.Event()
        self._heartbeat_interval = 0.5
        self._cleaned_jobs: set[int] = set()
        # Application code runs here; a copy abandoned at exit may still be computing.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mr-task")
        self._in_thread = 0

    async def start(self) -> None:
        settings = self.settings
        try:
            settings.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"--work-dir {settings.work_dir}: {error.strerror}") from error
        for leftover in settings.work_dir.glob("job-*/*.tmp"):
            leftover.unlink(missing_ok=True)
        self._tracing = setup_tracing(service_name(settings.worker_id), settings.otlp_endpoint)
        server = Server(settings.listen, tracing=self._tracing, listen_setting="--listen",
                        shutdown_grace_seconds=WORKER_SHUTDOWN_GRACE_SECONDS)
        server.add_service(pb.DESCRIPTOR.services_by_name["Worker"],
                           pb_grpc.add_WorkerServicer_to_server, FetchServicer(settings.work_dir))
        server.on_stop(self._close_channels)
        self._server = server
        port = (await server.start()).port
        host = settings.advertise_host or settings.listen.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        self.address = str(Address(host, port))
        self._coordinator_channel = open_channel(
            settings.coordinator, coordinator_client_interceptors(self._tracing),
            options=QUICK_RECONNECT_OPTIONS,
        )
        self._coordinator = pb_grpc.CoordinatorStub(self._coordinator_channel)
        log.info("worker %s serving map output on %s, coordinator %s", settings.worker_id,
                 self.address, settings.coordinator)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until told to exit or `stop`; raises CoordinatorUnreachable when it gives up."""
        self._stop = stop
        heartbeats = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._task_loop(stop)
        except _StoppedUnanswered:
            log.info("stopping without the coordinator's answer")
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError, CoordinatorUnreachable,
                                     _StoppedUnanswered):
                await heartbeats

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("worker %s stopped", self.settings.worker_id)

    async def _close_channels(self) -> None:
        for channel in [self._coordinator_channel, *self._peers.values()]:
            if channel is not None:
                await channel.close(grace=None)

    @property
    def _leaving(self) -> bool:
        """Whether this worker is on its way out: asked to stop, or told the work is over."""
        return self._told_to_exit.is_set() or (self._stop is not None and self._stop.is_set())

    @property
    def computing(self) -> bool:
        """Whether application code still runs in a task thread (an abandoned copy)."""
        return self._in_thread > 0

    async def _in_task_thread(self, function: Callable[[], T]) -> T:
        def counted() -> T:
            self._in_thread += 1
            try:
                return function()
            finally:
                self._in_thread -= 1

        return await asyncio.get_running_loop().run_in_executor(self._executor, counted)

    # ---- talking to the coordinator

    async def _call(self, make_call: Callable[[], Awaitable[T]]) -> T:
        """Call the coordinator until it answers; give up after `give_up_after` of silence."""
        while True:
            try:
                result = await make_call()
            except grpc.aio.AioRpcError as error:
                if self._leaving:
                    # A leaving worker makes one attempt (a finished task's report may still
                    # count) and does not wait for a coordinator that may be gone for good:
                    # one that said the work is over exits as soon as it has told every
                    # worker so, and may be gone before a report of a late copy reaches it.
                    raise _StoppedUnanswered from error
                silent = time.monotonic() - self._last_contact
                if silent > self.settings.give_up_after:
                    raise CoordinatorUnreachable(
                        f"coordinator {self.settings.coordinator} unreachable for {silent:.0f} s "
                        f"({error.code().name})"
                    ) from error
                await asyncio.sleep(RETRY_DELAY_SECONDS)  # backoff before the next attempt
                continue
            self._last_contact = time.monotonic()
            self._reached = True
            return result

    async def _heartbeat_loop(self) -> None:
        assert self._coordinator is not None
        stub = self._coordinator
        request = pb.HeartbeatRequest(worker_id=self.settings.worker_id, address=self.address)
        while True:
            reply = await self._call(lambda: stub.Heartbeat(
                request, timeout=RPC_DEADLINE_SECONDS, wait_for_ready=not self._reached))
            if reply.action == pb.ACTION_EXIT:
                self._told_to_exit.set()
            if reply.interval_seconds > 0:
                self._heartbeat_interval = reply.interval_seconds
            self._clean_finished_jobs(list(reply.finished_jobs))
            await asyncio.sleep(self._heartbeat_interval)  # the heartbeat period

    async def _task_loop(self, stop: asyncio.Event) -> None:
        assert self._coordinator is not None
        stub = self._coordinator
        request = pb.RequestTaskRequest(worker_id=self.settings.worker_id, address=self.address)
        # What to do next, when the report of the last task brought it; otherwise ask.
        reply: pb.RequestTaskResponse | None = None
        while not stop.is_set() and not self._told_to_exit.is_set():
            if reply is None:
                reply = await self._unless_stopped(stop, self._call(
                    lambda: stub.RequestTask(request, timeout=REQUEST_TASK_DEADLINE_SECONDS,
                                             wait_for_ready=not self._reached)
                ))
                if reply is None:
                    return
            if reply.action == pb.ACTION_EXIT:
                log.info("coordinator says the work is over")
                return
            if reply.action == pb.ACTION_WAIT:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), reply.retry_after_seconds)
                reply = None
                continue
            task = convert.task_from_pb(reply.task)
            running = asyncio.ensure_future(self._run_task(task))
            over = asyncio.ensure_future(self._told_to_exit.wait())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({running, over, stopped}, return_when=asyncio.FIRST_COMPLETED)
            over.cancel()
            stopped.cancel()
            if not running.done():
                # The work is over (another copy of this task finished it) or we are asked to
                # stop: the copy is abandoned, as the coordinator expects of a worker that
                # goes away mid-task.
                running.cancel()
                log.info("abandoning %s task %d: %s", task.kind.value, task.index,
                         "the work is over" if self._told_to_exit.is_set() else "stopping")
                return
            # A worker on its way out asks for nothing: a task handed to it would wait for the
            # coordinator to find it gone.
            reply = await self._report(stub, running.result(), request_next=not self._leaving)

    async def _unless_stopped(self, stop: asyncio.Event, call: Awaitable[T]) -> T | None:
        """What `call` returns, or None when `stop` comes first (the call is then cancelled):
        a call waiting for an unreachable coordinator must not hold up a stopping worker."""
        calling = asyncio.ensure_future(call)
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({calling, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not calling.done():
            calling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await calling
            return None
        return calling.result()

    async def _report(self, stub: pb_grpc.CoordinatorAsyncStub, report: pb.ReportTaskRequest,
                      request_next: bool) -> pb.RequestTaskResponse | None:
        """Report a finished task and, with `request_next`, ask for the next in the same call.
        Returns the next task, or None when the worker should ask with RequestTask: it did not
        ask, the coordinator had nothing at once (RequestTask waits for work), or the
        coordinator predates request_next."""
        report.request_next = request_next
        reply = await self._call(lambda: stub.ReportTask(report, timeout=RPC_DEADLINE_SECONDS))
        if not reply.HasField("next") or reply.next.action in (pb.ACTION_UNSPECIFIED,
                                                                pb.ACTION_WAIT):
            return None
        return reply.next

    def _clean_finished_jobs(self, finished: list[int]) -> None:
        for job_id in finished:
            if job_id in self._cleaned_jobs:
                continue
            self._cleaned_jobs.add(job_id)
            shutil.rmtree(self.settings.work_dir / f"job-{job_id}", ignore_errors=True)

    # ---- running tasks

    async def _run_task(self, task: TaskAssignment) -> pb.ReportTaskRequest:
        assert self._tracing is not None
        report = pb.ReportTaskRequest(
            worker_id=self.settings.worker_id, address=self.address, job_id=task.job_id,
            kind=convert.KIND_TO_PB[task.kind], index=task.index, attempt=task.attempt,
        )
        tracer = self._tracing.tracer(__name__)
        with tracer.start_as_current_span(
            f"mr.{task.kind.value}",
            context=context_from_traceparent(task.traceparent),
            attributes={
                "mr.job_id": task.job_id, "mr.index": task.index, "mr.attempt": task.attempt,
                "mr.worker": self.settings.worker_id,
            },
        ) as span:
            started = time.monotonic()
            try:
                if task.kind is TaskKind.MAP:
                    report.output_bytes = await self._in_task_thread(lambda: self._map(task))
                    report.success = True
                else:
                    await self._reduce(task, report)
            except AppError as error:
                report.success = False
                report.error = str(error)
            except Exception as error:
                # The application raised: report it; the coordinator retries the task elsewhere
                # and fails the job when it keeps failing.
                log.warning("%s task %d failed: %s", task.kind.value, task.index, error)
                report.success = False
                report.error = f"{type(error).__name__}: {error}".splitlines()[0]
            span.set_attribute("mr.success", report.success)
            if report.error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, report.error))
            log.info("%s task %d of job %d (attempt %d): %s in %.2f s", task.kind.value,
                     task.index, task.job_id, task.attempt,
                     "done" if report.success else "failed", time.monotonic() - started)
        return report

    def _map(self, task: TaskAssignment) -> int:
        assert task.split is not None
        app = load_app(task.app)
        contents, _ = read_split(task.split)
        buckets = run_map(app, task.split.path, contents, task.reduces)
        return write_partitions(self.settings.work_dir, task.job_id, task.index, task.attempt,
                                buckets)

    async def _reduce(self, task: TaskAssignment, report: pb.ReportTaskRequest) -> None:
        app = await self._in_task_thread(lambda: load_app(task.app))
        # Other workers' partitions come over FetchPartition, concurrently; this worker's own
        # are read from its disk by the task thread, with no round trip through the loop.
        mine = self.settings.worker_id
        remote = [output for output in task.map_outputs if output.worker_id != mine]
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)
        fetched = dict(zip(
            (output.map_index for output in remote),
            await asyncio.gather(*(self._fetch(output, task, limit) for output in remote)),
            strict=True,
        ))

        def merge_and_reduce() -> int | list[tuple[MapOutput, str]]:
            blobs: list[bytes] = []
            failures: list[tuple[MapOutput, str]] = []
            for output in task.map_outputs:
                if output.worker_id == mine:
                    path = partition_path(self.settings.work_dir, task.job_id, output.map_index,
                                          output.attempt, task.index)
                    try:
                        blob: bytes | str = path.read_bytes()
                    except OSError as error:
                        blob = f"local read failed: {error.strerror}"
                else:
                    blob = fetched[output.map_index]
                if isinstance(blob, str):
                    failures.append((output, blob))
                else:
                    blobs.append(blob)
            if failures:
                return failures
            lines = reduce_lines(app, merge_partitions(blobs))
            tag = f"{mine}-{task.attempt}"
            return write_output(Path(task.output_dir), task.index, lines, tag)

        outcome = await self._in_task_thread(merge_and_reduce)
        if isinstance(outcome, int):
            report.output_bytes = outcome
            report.success = True
            return
        for output, error in outcome:
            report.fetch_failures.add(map_index=output.map_index, worker_id=output.worker_id,
                                      attempt=output.attempt, error=error)
        report.success = False

    async def _fetch(self, output: MapOutput, task: TaskAssignment, limit: asyncio.Semaphore
                     ) -> bytes | str:
        """Another worker's partition for this reduce task, or why it could not be had."""
        assert self._tracing is not None
        async with limit:
            with self._tracing.tracer(__name__).start_as_current_span(
                "mr.fetch",
                attributes={"mr.map_index": output.map_index, "mr.from_worker": output.worker_id,
                            "mr.from_address": output.address},
            ) as span:
                error_text = ""
                for attempt in range(FETCH_TRIES):
                    try:
                        data = await self._fetch_remote(output, task)
                    except grpc.aio.AioRpcError as error:
                        error_text = f"{error.code().name}: {error.details()}"
                        if error.code() == grpc.StatusCode.NOT_FOUND:
                            break
                    except ValueError as error:
                        error_text = str(error)
                    else:
                        span.set_attribute("mr.bytes", len(data))
                        return data
                    if attempt + 1 < FETCH_TRIES:
                        await asyncio.sleep(FETCH_RETRY_DELAY_SECONDS * (attempt + 1))  # backoff
                span.set_status(trace.Status(trace.StatusCode.ERROR, error_text))
                log.warning("cannot fetch map %d from %s (%s): %s", output.map_index,
                            output.worker_id, output.address, error_text)
                return error_text

    async def _fetch_remote(self, output: MapOutput, task: TaskAssignment) -> bytes:
        assert self._tracing is not None
        channel = self._peers.get(output.address)
        if channel is None:
            channel = open_channel(output.address, self._tracing.client_interceptors())
            self._peers[output.address] = channel
        stub = pb_grpc.WorkerStub(channel)
        request = pb.FetchPartitionRequest(job_id=task.job_id, map_index=output.map_index,
                                           attempt=output.attempt, reduce_index=task.index)
        parts: list[bytes] = []
        total = -1
        call: Any = stub.FetchPartition(request, timeout=FETCH_DEADLINE_SECONDS)
        async for chunk in call:
            parts.append(chunk.data)
            if chunk.last:
                total = chunk.total_bytes
        data = b"".join(parts)
        if total != len(data):
            raise ValueError(f"partition stream cut short ({len(data)} of {total} bytes)")
        return data


async def serve_worker(settings: WorkerSettings, stop: asyncio.Event) -> bool:
    """Run a worker until the work is over or `stop`; returns whether application code is
    still running in an abandoned task thread (the caller then exits without joining it)."""
    # While a task thread computes, this thread still serves FetchPartition to other workers'
    # reducers and heartbeats the coordinator. Python hands the GIL to a waiting thread only
    # every switch interval (5 ms by default), and a reducer's fetch of a busy worker's
    # partitions waits that long several times per partition; 1 ms keeps fetches quick.
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(previous_interval, SWITCH_INTERVAL_SECONDS))
    try:
        worker = Worker(settings)
        await worker.start()
        try:
            await worker.run(stop)
        finally:
            await worker.stop()
    finally:
        sys.setswitchinterval(previous_interval)
    return worker.computing
