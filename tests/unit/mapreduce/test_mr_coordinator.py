"""The coordinator's waiting on scheduler changes, without a server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from distlab.protocols.mapreduce import SchedulerConfig
from distlab.runtime.config import Address
from distlab.runtime.mapreduce.coordinator import Coordinator, CoordinatorSettings


def coordinator(tmp_path: Path) -> Coordinator:
    return Coordinator(CoordinatorSettings(
        listen=Address("127.0.0.1", 1), data_dir=tmp_path, metrics=None,
        scheduler=SchedulerConfig(),
    ))


def test_a_cancelled_wait_stays_cancelled_when_a_change_lands_at_the_same_time(
    tmp_path: Path,
) -> None:
    """stop() cancels the timer task while it waits for a change; when a change is signalled
    in the same turn of the loop, the cancellation must still end the wait (a wait that
    swallowed it would keep the timer running and stop() waiting for it forever)."""

    async def scenario() -> None:
        subject = coordinator(tmp_path)
        waiting = asyncio.ensure_future(subject.wait_for_change(30.0))
        await asyncio.sleep(0)  # let the wait begin
        subject._changed.set()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(scenario())


def test_a_wait_ends_on_a_change_or_after_its_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        subject = coordinator(tmp_path)
        waiting = asyncio.ensure_future(subject.wait_for_change(30.0))
        await asyncio.sleep(0)
        subject._changed.set()
        await asyncio.wait_for(waiting, 5.0)
        await subject.wait_for_change(0.01)  # nothing changes: returns when its time is up

    asyncio.run(scenario())
