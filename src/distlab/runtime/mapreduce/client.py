"""Talking to a coordinator as a submitter: submit a job, ask its status, follow its progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc

from distlab.proto import mapreduce_pb2 as pb
from distlab.proto import mapreduce_pb2_grpc as pb_grpc
from distlab.runtime.mapreduce.convert import FINISHED_STATES
from distlab.wire.addresses import Address
from distlab.wire.channels import open_channel

CALL_DEADLINE_SECONDS = 10.0
# A submitter or worker often starts together with its coordinator, and its first connection
# attempts are refused until the coordinator listens: retried this quickly (loopback refusals
# cost nothing), the first call goes through within tens of milliseconds of the coordinator
# serving rather than after the usual backoff, a sizeable part of a small job.
QUICK_RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 100),
)


class JobRejected(ValueError):
    """The coordinator refused the job as submitted (INVALID_ARGUMENT); one line."""


class CoordinatorGone(RuntimeError):
    """The coordinator could not be reached for longer than the caller allows."""


async def submit_job(address: Address | str, spec: pb.JobSpec) -> pb.SubmitJobResponse:
    async with open_channel(address, options=QUICK_RECONNECT_OPTIONS) as channel:
        stub = pb_grpc.CoordinatorStub(channel)
        try:
            reply: pb.SubmitJobResponse = await stub.SubmitJob(
                pb.SubmitJobRequest(spec=spec), timeout=CALL_DEADLINE_SECONDS,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise JobRejected(error.details() or "job rejected") from error
            raise
        return reply


async def job_status(address: Address | str, job_id: int = 0) -> pb.JobProgress:
    async with open_channel(address) as channel:
        stub = pb_grpc.CoordinatorStub(channel)
        reply: pb.JobProgress = await stub.JobStatus(
            pb.JobStatusRequest(job_id=job_id), timeout=CALL_DEADLINE_SECONDS
        )
        return reply


async def follow_job(address: Address | str, job_id: int, give_up_after: float = 30.0
                     ) -> AsyncIterator[pb.JobProgress]:
    """Progress snapshots until the job is finished, riding out coordinator restarts: the
    stream is opened again while the coordinator is away, for up to `give_up_after` seconds."""
    last_contact = time.monotonic()
    async with open_channel(address) as channel:
        stub = pb_grpc.CoordinatorStub(channel)
        while True:
            try:
                async for progress in stub.WatchJob(pb.WatchJobRequest(job_id=job_id)):
                    last_contact = time.monotonic()
                    yield progress
                    if progress.state in FINISHED_STATES:
                        return
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED,
                                        grpc.StatusCode.CANCELLED,
                                        grpc.StatusCode.UNKNOWN):
                    raise
                if time.monotonic() - last_contact > give_up_after:
                    raise CoordinatorGone(
                        f"coordinator {address} unreachable for {give_up_after:.0f} s"
                    ) from error
            await asyncio.sleep(0.2)  # backoff before reopening the stream


async def follow_to_end(address: Address | str, job_id: int,
                        on_progress: Callable[[pb.JobProgress], None]) -> pb.JobProgress:
    """Follow the job until it is finished, handing every snapshot to `on_progress`; the
    last snapshot (a finished job's)."""
    last: pb.JobProgress | None = None
    async for progress in follow_job(address, job_id):
        last = progress
        on_progress(progress)
    assert last is not None, "a followed job ends with a finished snapshot"
    return last
