"""The virtual-time event loop: asyncio's semantics, virtual time, no threads, no I/O."""

from __future__ import annotations

import asyncio

import pytest

from distlab.sim.loop import RealWorldRefused, SimulationStalled, VirtualTimeLoop, run_virtual


def test_an_hour_of_sleep_is_one_jump_of_the_clock() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(3600)
        return started, loop.time()

    loop = VirtualTimeLoop()
    started, ended = loop.run_until_complete(main())
    assert (started, ended) == (0.0, 3600.0)
    assert loop.iterations < 10
    loop.close()


def test_timers_at_one_instant_fire_in_the_order_they_were_set() -> None:
    fired: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for name in "abcdef":
            loop.call_at(5.0, fired.append, name)
        loop.call_at(4.0, fired.append, "first")
        cancelled = loop.call_at(5.0, fired.append, "never")
        cancelled.cancel()
        await asyncio.sleep(6)

    run_virtual(main())
    assert fired == ["first", "a", "b", "c", "d", "e", "f"]


def test_timeouts_and_tasks_run_on_virtual_time() -> None:
    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    async def main() -> tuple[str, float]:
        try:
            async with asyncio.timeout(2.5):
                await slow()
        except TimeoutError:
            pass
        results = await asyncio.gather(slow(), slow())
        return results[0], asyncio.get_running_loop().time()

    assert run_virtual(main()) == ("late", 12.5)


def test_threads_are_refused() -> None:
    async def main() -> None:
        await asyncio.to_thread(print, "from a thread")

    with pytest.raises(RealWorldRefused, match="no threads under simulation"):
        run_virtual(main())


def test_sockets_are_refused() -> None:
    async def main() -> None:
        await asyncio.open_connection("127.0.0.1", 9)

    with pytest.raises(RealWorldRefused):
        run_virtual(main())


def test_a_run_that_waits_for_nothing_is_a_deadlock() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationStalled, match="waits for ever"):
        run_virtual(main())


def test_pending_tasks_are_cancelled_and_cleaned_up() -> None:
    cleaned: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(1e9)
        finally:
            cleaned.append(True)

    async def main() -> None:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(1)

    run_virtual(main())
    assert cleaned == [True]
