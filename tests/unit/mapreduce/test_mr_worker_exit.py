"""A worker the coordinator has told that the work is over exits cleanly even when the
coordinator is gone before the worker's last report reaches it: the coordinator leaves as soon
as every worker has been told, and a late task copy may finish just after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from distlab.runtime.mapreduce import worker as worker_module
from distlab.runtime.mapreduce.worker import CoordinatorUnreachable, Worker, WorkerSettings
from distlab.wire.addresses import Address


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                grpc.aio.Metadata(), "coordinator gone")


def a_worker(tmp_path: Path, give_up_after: float) -> Worker:
    return Worker(WorkerSettings(worker_id="w", coordinator=Address("127.0.0.1", 1),
                                 listen=Address("127.0.0.1", 0), work_dir=tmp_path,
                                 give_up_after=give_up_after))


class CountedCall:
    """A call to a coordinator that is gone, counting its attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    async def __call__(self) -> None:
        self.attempts += 1
        raise unavailable()


async def test_a_worker_told_the_work_is_over_does_not_retry_an_unanswered_report(
    tmp_path: Path,
) -> None:
    worker = a_worker(tmp_path, give_up_after=30.0)
    worker._told_to_exit.set()
    call = CountedCall()
    with pytest.raises(worker_module._StoppedUnanswered):
        await asyncio.wait_for(worker._call(call), timeout=30)
    assert call.attempts == 1


async def test_a_working_worker_retries_until_its_give_up_period_ends(tmp_path: Path) -> None:
    worker = a_worker(tmp_path, give_up_after=0.3)
    call = CountedCall()
    with pytest.raises(CoordinatorUnreachable):
        await asyncio.wait_for(worker._call(call), timeout=30)
    assert call.attempts >= 2
