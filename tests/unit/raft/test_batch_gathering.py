"""A leader's next batch waits, once the previous one commits, for the writers that batch
answered (up to `batch_wait_seconds`), and a lone writer never waits; on virtual time."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    Heartbeat,
    HeartbeatReply,
)
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.host.machine import AddressBook, HostedMachine
from distlab.runtime.host.metrics import DriverMetrics
from distlab.runtime.host.ports import LoopClock
from distlab.sim.loop import run_virtual
from tests.unit.raft.raft_harness import N1, N2, elect, make
from tests.unit.raft.test_proposal_wait import Journal, NoDisk

# A follower's round trip (append, fsync, reply), and the writers' between an answer and
# their next request: writer N pauses N + 1 times this, so they come back one by one.
REPLICATION_SECONDS = 0.001
WRITER_SECONDS = 0.0001
BATCH_WAIT_SECONDS = 0.004


class Follower(NoDisk):
    """Node 2, acknowledging every append a replication round trip after it was sent, over a
    disk that keeps nothing; counts the entries of each append with some."""

    def __init__(self) -> None:
        self.driver: Driver[Any] | None = None
        self.batches: list[int] = []

    def send(self, message: Any, trace_context: Any) -> None:
        if message.recipient != N2 or self.driver is None:
            return
        reply: Any
        if isinstance(message, AppendEntries):
            if message.entries:
                self.batches.append(len(message.entries))
            reply = AppendEntriesReply(
                message.term, N2, N1, success=True,
                match_index=message.prev_log_index + len(message.entries),
                read_round=message.read_round)
        elif isinstance(message, Heartbeat):
            reply = HeartbeatReply(message.term, N2, N1, read_round=message.read_round)
        else:
            return
        asyncio.get_running_loop().call_later(REPLICATION_SECONDS, self.driver.deliver, reply)


def leader(batch_wait: float) -> tuple[Driver[Any], Follower]:
    follower = Follower()
    driver: Driver[Any] = Driver(
        node_id=N1, group=0, core=elect(make(N1), N2),
        machine=HostedMachine(Journal(), AddressBook({})), storage=follower,
        transport=follower, clock=LoopClock(), metrics=DriverMetrics("raft", 0),
        timing=Timing(tick_seconds=0.05, batch_wait_seconds=batch_wait))
    follower.driver = driver
    return driver, follower


def closed_loop(batch_wait: float, writers: int, writes: int) -> tuple[list[int], float]:
    """`writers` each writing `writes` times, back to back: the appends' sizes, and the
    virtual time it all took."""

    async def main() -> tuple[list[int], float]:
        driver, follower = leader(batch_wait)
        driver.start()
        loop = asyncio.get_running_loop()

        async def writer(number: int) -> None:
            for count in range(writes):
                assert await driver.propose(b"%d-%d" % (number, count)) == (
                    b"%d-%d" % (number, count))
                await asyncio.sleep(WRITER_SECONDS * (number + 1))

        started = loop.time()
        try:
            await asyncio.gather(*(writer(n) for n in range(writers)))
            return follower.batches, loop.time() - started
        finally:
            await driver.stop()

    return run_virtual(main())


def test_under_many_writers_batches_gather_the_writers_the_last_one_answered() -> None:
    eager = closed_loop(0.0, writers=16, writes=20)[0]
    gathered = closed_loop(BATCH_WAIT_SECONDS, writers=16, writes=20)[0]
    assert sum(eager) == sum(gathered) == 16 * 20
    # Without the wait every batch leaves with what trickled in meanwhile; with it, every
    # writer but the last one back rides in each batch, and the same writes take fewer.
    assert statistics.mean(eager[:20]) < 8
    assert min(gathered[:20]) >= 15
    assert len(gathered) < len(eager)


def test_a_lone_writer_never_waits() -> None:
    batches, seconds = closed_loop(BATCH_WAIT_SECONDS, writers=1, writes=20)
    assert batches == [1] * 20
    # Each write costs its replication round trip and the writer's pause, nothing more.
    assert seconds < 20 * (REPLICATION_SECONDS + WRITER_SECONDS) + 1e-6


def test_writers_that_do_not_come_back_hold_the_next_batch_for_the_wait_at_most() -> None:
    async def main() -> float:
        driver, _ = leader(BATCH_WAIT_SECONDS)
        driver.start()
        loop = asyncio.get_running_loop()
        try:
            # One batch of three writers, answered; none of them writes again.
            await driver.propose(b"first")
            await asyncio.gather(*(driver.propose(b"once-%d" % n) for n in range(3)))
            started = loop.time()
            await driver.propose(b"late")
            return loop.time() - started
        finally:
            await driver.stop()

    waited = run_virtual(main())
    assert waited <= BATCH_WAIT_SECONDS + REPLICATION_SECONDS + 1e-6
