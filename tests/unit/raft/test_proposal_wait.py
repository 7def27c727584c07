"""A proposal or read barrier that gets no outcome within the driver's wait fails as TimedOut
(indefinite), checked on the driver's ticks rather than by a timer per request; on virtual
time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from distlab.core.replicated_log import OutcomeUnknown, TimedOut
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.host.machine import AddressBook, HostedMachine
from distlab.runtime.host.metrics import DriverMetrics
from distlab.runtime.host.ports import LoopClock
from distlab.sim.loop import run_virtual
from tests.unit.raft.raft_harness import N1, N2, elect, make

TICK_SECONDS = 0.05
# Shorter than the leader's election timeout (10 ticks): it leads, without a quorum, until then.
WAIT_SECONDS = 0.2


class NoDisk:
    """A driver's storage that keeps nothing."""

    async def persist(self, ready: Any) -> None:
        return None

    def save_snapshot(self, snapshot: Any) -> None:
        return None

    def close(self) -> None:
        return None


class Unanswered(NoDisk):
    """A transport to followers that never answer, over a disk that keeps nothing."""

    def send(self, message: Any, trace_context: Any) -> None:
        return None


class Journal:
    def apply(self, index: int, command: bytes) -> bytes:
        return command

    def snapshot(self) -> bytes:
        return b""

    def restore(self, data: bytes) -> None:
        return None


def leader_without_quorum(wait: float | None) -> Driver[Any]:
    core = elect(make(N1), N2)
    nowhere = Unanswered()
    return Driver(node_id=N1, group=0, core=core,
                  machine=HostedMachine(Journal(), AddressBook({})),
                  storage=nowhere, transport=nowhere, clock=LoopClock(),
                  metrics=DriverMetrics("raft", 0),
                  timing=Timing(tick_seconds=TICK_SECONDS, wait_seconds=wait))


def test_a_proposal_without_a_quorum_times_out_after_the_wait() -> None:
    async def main() -> float:
        driver = leader_without_quorum(WAIT_SECONDS)
        driver.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with pytest.raises(TimedOut, match=r"no outcome within 0\.2 s"):
                await driver.propose(b"lost")
            return loop.time() - started
        finally:
            await driver.stop()

    waited = run_virtual(main())
    # Virtual time: what the wait and the tick that noticed it add up to, exactly.
    assert WAIT_SECONDS <= waited <= WAIT_SECONDS + TICK_SECONDS + 1e-9
    assert issubclass(TimedOut, OutcomeUnknown)  # indefinite: it may still be applied


def test_without_a_wait_the_proposal_waits_for_the_leader_to_step_down() -> None:
    async def main() -> None:
        driver = leader_without_quorum(None)
        driver.start()
        try:
            with pytest.raises(OutcomeUnknown) as raised:
                await driver.propose(b"lost")
            assert not isinstance(raised.value, TimedOut)
        finally:
            await driver.stop()

    run_virtual(main())


def test_a_read_barrier_without_a_quorum_times_out_after_the_wait() -> None:
    async def main() -> None:
        driver = leader_without_quorum(WAIT_SECONDS)
        driver.start()
        try:
            with pytest.raises(TimedOut):
                await driver.read_barrier()
        finally:
            await driver.stop()

    run_virtual(main())
