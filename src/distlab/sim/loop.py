"""A deterministic asyncio event loop whose clock is virtual.

`VirtualTimeLoop` is asyncio's own loop (`BaseEventLoop`: its tasks, futures, handles and
ready queue) with a virtual clock and a run loop that never waits. When no callback is
ready, the clock jumps to the earliest timer instead of sleeping until it. Simulated seconds
therefore cost only the work done in them, and since callbacks run in an order fixed by the
program alone (ready callbacks first in, first out; timers by due time, then by the order
they were set), the same program on the same seed runs the same way every time.

There is no I/O to poll and no other thread: an executor (so `asyncio.to_thread`, and name
resolution), a socket, a server, a subprocess or `call_soon_threadsafe` are refused, so
nothing under simulation can reach the real world or depend on the operating system's
scheduling.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import collections
import concurrent.futures
import contextlib
import contextvars
import heapq
import itertools
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, TypeVarTuple

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")


class SimulationStalled(RuntimeError):
    """Nothing is ready and no timer is set, yet the main coroutine waits: a deadlock."""


class RealWorldRefused(RuntimeError):
    """Something under simulation asked for a thread, a file descriptor or a socket."""


class VirtualTimeLoop(asyncio.base_events.BaseEventLoop):
    """asyncio's loop on virtual time: deterministic, and as fast as the work it does.

    The loop keeps asyncio's semantics (ready callbacks run in FIFO order, then the timers
    that are due) but its own timer heap: entries are `(when, sequence, handle)` tuples, so
    timers due at the same instant fire in the order they were set, and comparisons run in
    C. A cancelled timer stays in the heap until it comes up, and is skipped then.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = start
        self._timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._timer_sequence = itertools.count()
        # BaseEventLoop's own queue of ready callbacks, which its tasks and futures fill.
        self._ready_queue: collections.deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
        self.set_debug(False)
        self.iterations = 0

    def time(self) -> float:
        return self._now

    # --- scheduling, without the checks a multi-threaded loop needs ---

    def call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        handle = asyncio.Handle(callback, args, self, context)
        self._ready_queue.append(handle)
        return handle

    def call_at(self, when: float, callback: Callable[[*_Ts], object],
                *args: *_Ts, context: contextvars.Context | None = None
                ) -> asyncio.TimerHandle:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._timer_sequence), timer))
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def call_later(self, delay: float, callback: Callable[[*_Ts], object],
                   *args: *_Ts, context: contextvars.Context | None = None
                   ) -> asyncio.TimerHandle:
        return self.call_at(self._now + delay, callback, *args, context=context)

    def create_task(self, coro: Coroutine[Any, Any, T] | Generator[Any, None, T], *,
                    name: object = None, context: contextvars.Context | None = None
                    ) -> asyncio.Task[T]:
        task = super().create_task(coro, name=name, context=context)
        # A simulated cluster may be dropped with its nodes running: its loop and every task
        # on it are then garbage together, which is no leak and deserves no warning.
        task._log_destroy_pending = False  # type: ignore[attr-defined]
        return task

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass  # skipped when it comes up

    def _run_once(self) -> None:
        ready = self._ready_queue
        timers = self._timers
        self.iterations += 1
        if not ready and not self._stopping:  # type: ignore[attr-defined]
            while timers and timers[0][2].cancelled():
                heapq.heappop(timers)
            if not timers:
                raise SimulationStalled(
                    f"at t={self._now:.6f}s nothing is scheduled and the run waits for ever")
            when = timers[0][0]
            if when > self._now:
                self._now = when
        now = self._now
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if not timer.cancelled():
                timer._scheduled = False  # type: ignore[attr-defined]
                ready.append(timer)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle.cancelled():
                handle._run()

    # --- what a selector loop would do with the world, refused ---

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        raise RealWorldRefused("call_soon_threadsafe: no other thread runs under simulation")

    def run_in_executor(self, executor: concurrent.futures.Executor | None,
                        func: Callable[[*_Ts], T], *args: *_Ts
                        ) -> asyncio.Future[T]:
        # getaddrinfo and every socket call go through here too.
        name = getattr(func, "__qualname__", type(func).__name__)
        raise RealWorldRefused(
            f"run_in_executor({name}): no threads under simulation (asyncio.to_thread "
            "included)")

    # Sockets, servers, pipes and processes: refused before anything touches the system.
    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("create_connection: no network under simulation")

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("create_server: no network under simulation")

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("create_datagram_endpoint: no network under simulation")

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("create_unix_connection: no sockets under simulation")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("create_unix_server: no sockets under simulation")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("subprocess_exec: no processes under simulation")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        raise RealWorldRefused("subprocess_shell: no processes under simulation")

    def close(self) -> None:
        super().close()
        self._timers.clear()


def run_virtual(main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run `main` to completion on a fresh virtual-time loop, then close it.

    Tasks still pending when `main` returns (or raises) are cancelled and allowed to finish
    their clean-up, so that nothing is left half-run when the loop closes.
    """
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            cancel_pending(loop)
        finally:
            loop.close()


def cancel_pending(loop: VirtualTimeLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    gathered = asyncio.gather(*pending, return_exceptions=True)
    while not gathered.done():
        # A run stopped early (by a failure) may leave its own stop request queued; it
        # fires here, and the loop simply goes on.
        with contextlib.suppress(RuntimeError):
            loop.run_until_complete(gathered)
