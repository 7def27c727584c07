"""The coordinator process: the scheduler core behind the Coordinator gRPC service.

All scheduling happens on the event loop thread, one call at a time, so the core needs no
locks. Every call that changes the job table persists the core's records (one fsync) before
it answers: a job acknowledged to its submitter, or a task acknowledged to its worker,
survives a crash of the coordinator. A restarted coordinator replays the log and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace

from distlab.apps.mr.loader import AppError, canonical_reference, load_app
from distlab.proto import mapreduce_pb2 as pb
from distlab.proto import mapreduce_pb2_grpc as pb_grpc
from distlab.protocols.mapreduce import (
    DEFAULT_SPLIT_BYTES,
    Decision,
    Exit,
    InputFile,
    InvalidJob,
    JobSpec,
    Progress,
    RunTask,
    Scheduler,
    SchedulerConfig,
    Wait,
)
from distlab.runtime.mapreduce import convert
from distlab.runtime.mapreduce.joblog import JobLog
from distlab.runtime.mapreduce.telemetry import (
    context_from_traceparent,
    coordinator_server_interceptors,
    traceparent_of,
)
from distlab.runtime.server import Server
from distlab.telemetry.tracing import Tracing, setup_tracing
from distlab.wire.addresses import Address, ConfigError

log = logging.getLogger(__name__)

SERVICE_NAME = "mr-coordinator"
# An idle worker's RequestTask is held this long waiting for work before it is told to wait.
LONG_POLL_SECONDS = 1.0
# A progress stream sends a snapshot at least this often, so elapsed time and ETA move.
WATCH_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    listen: Address
    data_dir: Path
    metrics: Address | None
    scheduler: SchedulerConfig
    split_bytes: int = DEFAULT_SPLIT_BYTES
    otlp_endpoint: str | None = None


class Coordinator:
    """Owns the scheduler, the job log, the gRPC server, the timer and the job spans."""

    def __init__(self, settings: CoordinatorSettings) -> None:
        self.settings = settings
        self.scheduler = Scheduler(settings.scheduler)
        self.address: Address | None = None
        self._log: JobLog | None = None
        self._tracing: Tracing | None = None
        self._server: Server | None = None
        self._changed = asyncio.Event()
        self._job_spans: dict[int, trace.Span] = {}
        self._timer_task: asyncio.Task[None] | None = None
        self._seen_version = -1

    # ---- lifecycle

    async def start(self) -> None:
        settings = self.settings
        try:
            self._log = JobLog.open(settings.data_dir)
        except OSError as error:
            raise ConfigError(f"--data-dir {settings.data_dir}: {error.strerror}") from error
        self.scheduler.replay(self._log.recovered, time.monotonic())
        self.scheduler.start()
        self._tracing = setup_tracing(SERVICE_NAME, settings.otlp_endpoint)
        self._resume_job_spans()
        self._persist()

        server = Server(settings.listen, tracing=self._tracing,
                        interceptors=coordinator_server_interceptors(self._tracing),
                        metrics=settings.metrics, listen_setting="--listen",
                        metrics_setting="--metrics")
        server.add_service(pb.DESCRIPTOR.services_by_name["Coordinator"],
                           pb_grpc.add_CoordinatorServicer_to_server, CoordinatorServicer(self))
        if settings.metrics is not None:
            # Imported only here: Prometheus is a noticeable part of start-up otherwise.
            from distlab.runtime.mapreduce.metrics import TaskCounterCollector

            server.add_collector(TaskCounterCollector(
                lambda: self.scheduler.counters,
                lambda: len(self.scheduler.live_workers()),
                self.scheduler.jobs_by_state,
            ))
        # Job spans end after the last call is answered, before the spans are flushed.
        server.on_stop(self._end_job_spans)
        self._server = server
        self.address = await server.start()
        self._timer_task = asyncio.create_task(self._run_timer())
        recovered = len(self._log.recovered)
        log.info("coordinator epoch %d serving on %s (job log %s, %d records recovered)",
                 self.scheduler.epoch, self.address, self._log.path, recovered)

    async def wait_until_finished(self, stop: asyncio.Event) -> None:
        """Return on `stop`, or, in exit-when-idle mode, once every job is finished and every
        live worker has been told to exit (or a worker timeout has passed since)."""
        while not stop.is_set():
            if self.scheduler.work_over:
                grace_deadline = time.monotonic() + self.settings.scheduler.worker_timeout + 1.0
                while not stop.is_set() and time.monotonic() < grace_deadline:
                    if self.scheduler.every_worker_told_to_exit:
                        return
                    await self._wait_for_change(stop, 0.2)
                return
            await self._wait_for_change(stop, 1.0)

    async def stop(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        if self._server is not None:
            await self._server.stop()
        elif self._tracing is not None:
            self._tracing.shutdown()
        if self._log is not None:
            self._log.close()
        log.info("coordinator stopped")

    def _end_job_spans(self) -> None:
        for span in self._job_spans.values():
            span.end()
        self._job_spans.clear()

    # ---- used by the servicer

    def persist(self) -> None:
        """Write the scheduler's new records (fsync), then let waiters see the change."""
        self._persist()

    def now(self) -> float:
        return time.monotonic()

    def prepare_spec(self, message: pb.JobSpec) -> JobSpec:
        """Check a submitted job where the workers will run it; raises InvalidJob."""
        if not message.app:
            raise InvalidJob("the job names no application")
        reference = canonical_reference(message.app)
        try:
            load_app(reference)
        except AppError as error:
            raise InvalidJob(str(error)) from error
        inputs = []
        for path in message.inputs:
            try:
                size = os.stat(path).st_size
            except OSError as error:
                raise InvalidJob(f"input {path}: {error.strerror}") from error
            inputs.append(InputFile(path, size))
        output_dir = Path(message.output_dir)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidJob(f"output directory {output_dir}: {error.strerror}") from error
        spec = JobSpec(
            app=reference, inputs=tuple(inputs), reduces=message.reduces,
            output_dir=str(output_dir),
            split_bytes=message.split_bytes or self.settings.split_bytes,
        )
        spec.validate()
        return spec

    def submit(self, spec: JobSpec) -> int:
        assert self._tracing is not None
        span = self._tracing.tracer(__name__).start_span(
            "mr.job",
            context=context_from_traceparent(""),
            attributes={
                "mr.app": spec.app, "mr.inputs": len(spec.inputs), "mr.reduces": spec.reduces,
            },
        )
        job_id = self.scheduler.submit(spec, time.time(), traceparent_of(span))
        span.set_attribute("mr.job_id", job_id)
        self._job_spans[job_id] = span
        self._persist()
        return job_id

    async def wait_for_change(self, seconds: float) -> None:
        # asyncio.wait, not wait_for: Python 3.11's wait_for swallows a cancellation that
        # arrives as the event is set, which would leave the timer task running after stop()
        # cancelled it (and stop() waiting for it forever).
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({changed}, timeout=seconds)
        finally:
            changed.cancel()

    # ---- internals

    def _persist(self) -> None:
        assert self._log is not None
        self._log.append(self.scheduler.take_records())
        if self.scheduler.version == self._seen_version:
            return
        self._seen_version = self.scheduler.version
        self._end_finished_job_spans()
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, stop: asyncio.Event, seconds: float) -> None:
        stopped = asyncio.ensure_future(stop.wait())
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({stopped, changed}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            changed.cancel()

    async def _run_timer(self) -> None:
        while True:
            timer = self.scheduler.get_timer()
            delay = 1.0 if timer is None else max(0.0, timer - time.monotonic())
            if delay > 0:
                await self.wait_for_change(min(delay, 1.0))
            now = time.monotonic()
            timer = self.scheduler.get_timer()
            if timer is not None and timer <= now:
                self.scheduler.handle_timer(now)
                self._persist()

    def _resume_job_spans(self) -> None:
        """After a restart, unfinished jobs get a span in their original trace."""
        assert self._tracing is not None
        for job_id in self.scheduler.job_ids():
            progress = self.scheduler.progress(job_id, time.time())
            if progress.state.finished:
                continue
            self._job_spans[job_id] = self._tracing.tracer(__name__).start_span(
                "mr.job.resumed",
                context=context_from_traceparent(self.scheduler.traceparent(job_id)),
                attributes={"mr.job_id": job_id, "mr.epoch": self.scheduler.epoch},
            )

    def _end_finished_job_spans(self) -> None:
        for job_id in list(self._job_spans):
            progress = self.scheduler.progress(job_id, time.time())
            if not progress.state.finished:
                continue
            span = self._job_spans.pop(job_id)
            span.set_attribute("mr.state", progress.state.value)
            span.set_attribute("mr.maps_reexecuted", progress.maps_reexecuted)
            span.set_attribute("mr.backup_attempts", progress.backup_attempts)
            if progress.error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, progress.error))
            span.end()


def decision_to_pb(decision: Decision) -> pb.RequestTaskResponse:
    if isinstance(decision, RunTask):
        return pb.RequestTaskResponse(action=pb.ACTION_RUN, task=convert.task_to_pb(decision.task))
    if isinstance(decision, Exit):
        return pb.RequestTaskResponse(action=pb.ACTION_EXIT)
    assert isinstance(decision, Wait)
    return pb.RequestTaskResponse(action=pb.ACTION_WAIT, retry_after_seconds=decision.retry_after)


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator
        self._scheduler = coordinator.scheduler

    async def SubmitJob(
        self,
        request: pb.SubmitJobRequest,
        context: grpc.aio.ServicerContext[pb.SubmitJobRequest, pb.SubmitJobResponse],
    ) -> pb.SubmitJobResponse:
        try:
            spec = self._coordinator.prepare_spec(request.spec)
        except InvalidJob as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        job_id = self._coordinator.submit(spec)
        ahead = sum(
            1 for other in self._scheduler.job_ids()
            if other < job_id and not self._progress(other).state.finished
        )
        log.info("job %d submitted: %s, %d inputs, %d reduces", job_id, spec.app,
                 len(spec.inputs), spec.reduces)
        return pb.SubmitJobResponse(job_id=job_id, queued_behind=ahead)

    async def JobStatus(
        self,
        request: pb.JobStatusRequest,
        context: grpc.aio.ServicerContext[pb.JobStatusRequest, pb.JobProgress],
    ) -> pb.JobProgress:
        job_id = await self._job_id(request.job_id, context)
        return convert.progress_to_pb(self._progress(job_id))

    async def WatchJob(
        self,
        request: pb.WatchJobRequest,
        context: grpc.aio.ServicerContext[pb.WatchJobRequest, pb.JobProgress],
    ) -> AsyncIterator[pb.JobProgress]:
        job_id = await self._job_id(request.job_id, context)
        while True:
            progress = self._progress(job_id)
            yield convert.progress_to_pb(progress)
            if progress.state.finished:
                return
            await self._coordinator.wait_for_change(WATCH_INTERVAL_SECONDS)

    async def RequestTask(
        self,
        request: pb.RequestTaskRequest,
        context: grpc.aio.ServicerContext[pb.RequestTaskRequest, pb.RequestTaskResponse],
    ) -> pb.RequestTaskResponse:
        deadline = time.monotonic() + LONG_POLL_SECONDS
        while True:
            decision = self._scheduler.request_task(
                request.worker_id, request.address, self._coordinator.now()
            )
            self._coordinator.persist()
            if not isinstance(decision, Wait):
                return decision_to_pb(decision)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return decision_to_pb(decision)
            await self._coordinator.wait_for_change(remaining)

    async def ReportTask(
        self,
        request: pb.ReportTaskRequest,
        context: grpc.aio.ServicerContext[pb.ReportTaskRequest, pb.ReportTaskResponse],
    ) -> pb.ReportTaskResponse:
        report = convert.report_from_pb(request)
        if report is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown task kind")
        now = self._coordinator.now()
        reply = pb.ReportTaskResponse(accepted=self._scheduler.report(report, now))
        if request.request_next:
            # The worker is idle now: its next task goes back in this reply. Nothing is held
            # here; a worker told to wait asks again with RequestTask, which waits for work.
            decision = self._scheduler.request_task(request.worker_id, request.address, now)
            reply.next.CopyFrom(decision_to_pb(decision))
        self._coordinator.persist()
        return reply

    async def Heartbeat(
        self,
        request: pb.HeartbeatRequest,
        context: grpc.aio.ServicerContext[pb.HeartbeatRequest, pb.HeartbeatResponse],
    ) -> pb.HeartbeatResponse:
        keep_working = self._scheduler.heartbeat(
            request.worker_id, request.address, self._coordinator.now()
        )
        self._coordinator.persist()
        return pb.HeartbeatResponse(
            action=pb.ACTION_RUN if keep_working else pb.ACTION_EXIT,
            finished_jobs=self._scheduler.finished_jobs(),
            interval_seconds=self._scheduler.config.heartbeat_interval,
        )

    def _progress(self, job_id: int) -> Progress:
        return self._scheduler.progress(job_id, time.time())

    async def _job_id(self, requested: int, context: grpc.aio.ServicerContext[Any, Any]) -> int:
        job_id = requested or self._scheduler.latest_job_id()
        if job_id is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no job has been submitted")
        if job_id not in self._scheduler.job_ids():
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job {job_id}")
        return job_id


async def serve_coordinator(settings: CoordinatorSettings, stop: asyncio.Event) -> None:
    coordinator = Coordinator(settings)
    await coordinator.start()
    try:
        await coordinator.wait_until_finished(stop)
    finally:
        await coordinator.stop()
