"""The transaction driver's injected faults, on a virtual-time loop: each crash point strikes
at its moment of the protocol (after what it names has left, before what follows)."""

from __future__ import annotations

import asyncio

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    Decision,
    Prepare,
    Protocol,
    RecordKind,
    TxnConfig,
    TxnNode,
    Vote,
    parse_op,
)
from distlab.runtime.host.ports import LoopClock
from distlab.runtime.txn.driver import TxnDriver
from distlab.sim.loop import run_virtual
from tests.unit.txn.cluster import Recorder


def driver_for(node: int, recorder: Recorder, owners: dict[str, int]) -> TxnDriver:
    config = TxnConfig(node_id=NodeId(node), owner=lambda key: NodeId(owners[key]))

    def crash(point: str) -> None:
        # As the process's exit: the driver stops at once, whatever it was doing.
        recorder.crashed = recorder.crashed or point
        task = driver._task
        assert task is not None and driver._ticker is not None
        driver._ticker.cancel()
        task.cancel()
        if asyncio.current_task() is task:
            raise asyncio.CancelledError

    driver = TxnDriver(node_id=NodeId(node), core=TxnNode(config), storage=recorder,
                       transport=recorder, clock=LoopClock(), crash=crash)
    return driver


OWNERS = {"a": 2, "b": 3}


async def begin(driver: TxnDriver) -> None:
    ops = (parse_op("add:a=1"), parse_op("add:b=1"))
    asyncio.get_running_loop().create_task(
        driver.execute("t1", (1, "t1"), ops, Protocol.TWO_PHASE))
    await asyncio.sleep(0.05)


def test_crash_after_prepare_to_some_sends_one_prepare_only() -> None:
    async def main() -> Recorder:
        recorder = Recorder()
        driver = driver_for(1, recorder, OWNERS)
        driver.arm(frozenset({"coordinator-crash-after-prepare-some"}))
        driver.start()
        await begin(driver)
        return recorder

    recorder = run_virtual(main())
    assert recorder.crashed == "coordinator-crash-after-prepare-some"
    assert [type(message) for message in recorder.sent] == [Prepare]


@pytest.mark.parametrize("point, decisions_sent", [
    ("coordinator-crash-after-commit-logged", 0),
    ("coordinator-crash-after-commit-some", 1),
])
def test_coordinator_crashes_around_commit(point: str, decisions_sent: int) -> None:
    async def main() -> Recorder:
        recorder = Recorder()
        driver = driver_for(1, recorder, OWNERS)
        driver.arm(frozenset({point}))
        driver.start()
        await begin(driver)
        for participant in (2, 3):
            driver.deliver(Vote(NodeId(participant), NodeId(1), "t1", Protocol.TWO_PHASE, True))
        await asyncio.sleep(0.05)
        return recorder

    recorder = run_virtual(main())
    assert recorder.crashed == point
    assert [record.kind for record in recorder.records] == [RecordKind.COORDINATOR_COMMIT]
    assert sum(isinstance(m, Decision) for m in recorder.sent) == decisions_sent


@pytest.mark.parametrize("point, last_sent", [
    ("participant-crash-after-yes", "Vote"),
    ("participant-crash-after-ack", "DecisionAck"),
])
def test_participant_crashes_after_what_it_sent(point: str, last_sent: str) -> None:
    async def main() -> Recorder:
        recorder = Recorder()
        driver = driver_for(2, recorder, {"a": 2})
        driver.arm(frozenset({point}))
        driver.start()
        driver.deliver(Prepare(NodeId(1), NodeId(2), "t1", Protocol.TWO_PHASE, (1, "t1"),
                               (parse_op("add:a=1"),), (NodeId(2),)))
        await asyncio.sleep(0.005)
        driver.deliver(Decision(NodeId(1), NodeId(2), "t1", True))
        await asyncio.sleep(0.05)
        return recorder

    recorder = run_virtual(main())
    assert recorder.crashed == point
    assert type(recorder.sent[-1]).__name__ == last_sent


def test_an_unknown_fault_is_refused() -> None:
    async def main() -> None:
        driver = driver_for(1, Recorder(), OWNERS)
        with pytest.raises(ValueError, match="unknown transaction fault"):
            driver.arm(frozenset({"crash-sometime"}))

    run_virtual(main())
