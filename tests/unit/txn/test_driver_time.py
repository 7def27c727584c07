"""The transaction driver's time, on a virtual-time loop: while a Ready's records are being
forced the core hears nothing, so that time does not run its timeouts (over a group, forcing
waits for the group, as long as its leader is cut off)."""

from __future__ import annotations

import asyncio

from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    Prepare,
    Protocol,
    RecordKind,
    StateRequest,
    TxnConfig,
    TxnNode,
    TxnReady,
    parse_op,
)
from distlab.runtime.host.ports import LoopClock
from distlab.runtime.txn.driver import TxnDriver
from distlab.sim.loop import run_virtual
from tests.unit.txn.cluster import Recorder

COORDINATOR, PARTICIPANT = NodeId(1), NodeId(2)


class SlowLog(Recorder):
    """Forces records at once, or, once `stalled`, only when released."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = False
        self.released = asyncio.Event()

    async def persist(self, ready: TxnReady) -> None:
        if self.stalled:
            await self.released.wait()
        await super().persist(ready)


def prepare() -> Prepare:
    return Prepare(COORDINATOR, PARTICIPANT, "t1", Protocol.THREE_PHASE, (1, "t1"),
                   (parse_op("add:a=1"),), (COORDINATOR, PARTICIPANT))


def test_a_participant_stalled_on_its_log_does_not_run_the_timeouts_it_missed() -> None:
    async def main() -> SlowLog:
        log = SlowLog()
        config = TxnConfig(node_id=PARTICIPANT, owner=lambda key: PARTICIPANT)
        driver = TxnDriver(node_id=PARTICIPANT, core=TxnNode(config), storage=log,
                           transport=log, clock=LoopClock())
        driver.start()
        driver.deliver(prepare())
        await asyncio.sleep(0.02)
        assert [record.kind for record in log.records] == [RecordKind.PREPARED]
        # A duplicate PREPARE: the vote again, in a Ready that waits two seconds for the log,
        # many times the in-doubt, collection and pre-decision timeouts.
        log.stalled = True
        driver.deliver(prepare())
        await asyncio.sleep(2.0)
        log.stalled = False
        log.released.set()
        await asyncio.sleep(0.05)
        # Nothing decided alone: the termination protocol had no chance to hear anyone.
        assert [record.kind for record in log.records] == [RecordKind.PREPARED]
        await asyncio.sleep(1.0)
        asked = [index for index, message in enumerate(log.sent)
                 if isinstance(message, StateRequest)]
        assert asked, "the participant in doubt never started the termination protocol"
        await driver.stop()
        return log

    run_virtual(main())
