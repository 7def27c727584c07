"""A consensus group's driver built around its core, whichever the engine: the one place
that closes the loop between the driver and the transport that reports back to it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from distlab.core.ids import NodeId
from distlab.core.status import EngineStatus
from distlab.runtime.host.driver import CoreT, Driver, Timing
from distlab.runtime.host.machine import HostedMachine
from distlab.runtime.host.metrics import DriverMetrics
from distlab.runtime.host.ports import Clock, Storage, Transport

# Builds a group's transport given where to report snapshot outcomes (the driver, which
# itself needs the transport: the callback closes the loop).
TransportFactory = Callable[[Callable[[NodeId, bool], None]], Transport]


def group_driver(*, engine: str, node_id: NodeId, group: int, core: CoreT,
                 machine: HostedMachine, storage: Storage, transport: TransportFactory,
                 clock: Clock, timing: Timing,
                 on_failure: Callable[[BaseException], None]) -> Driver[CoreT]:
    """The driver of group `group` on `core`, its metrics named after `engine`."""
    reports: list[Driver[CoreT]] = []
    driver: Driver[CoreT] = Driver(
        node_id=node_id, group=group, core=core, machine=machine, storage=storage,
        transport=transport(lambda peer, ok: reports[0].report_snapshot(peer, ok)),
        clock=clock, metrics=DriverMetrics(engine, group), timing=timing,
        on_failure=on_failure,
    )
    reports.append(driver)
    return driver


class DrivenGroup:
    """What every engine's group forwards to its driver: the replicated-log calls."""

    driver: Driver[Any]

    async def stop(self) -> None:
        await self.driver.stop()

    def propose(self, command: bytes) -> Coroutine[Any, Any, bytes]:
        # The driver's coroutine itself: a layer of its own would be resumed on every wake-up.
        return self.driver.propose(command)

    async def read_barrier(self) -> None:
        await self.driver.read_barrier()

    def status(self) -> EngineStatus:
        return self.driver.status()
