"""The loop every driver runs around its sans-I/O core, whatever the protocol.

One asyncio task owns the core. Inputs are queued by whoever has them (the tick timer, the
peer router, clients) and the task is woken; it feeds everything queued to the core, then
handles each Ready the core has, feeding again after each (whatever arrived meanwhile joins
the next Ready), until the core has none. Ticks come from the Clock port, so the simulator
runs the same loop on virtual time. A driver supplies what differs: the inputs of its own
(`_feed_core`, which feeds ticks and peer messages, `_feed_ticks` and `_feed_messages`,
where its protocol wants them), how a Ready is handled, and what a failure stops.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
from typing import Any

from distlab.runtime.host.ports import Clock, Timer

# Every inbox is bounded: a peer whose message finds it full retransmits later.
INBOX_LIMIT = 10_000


class CoreLoop(abc.ABC):
    core: Any

    def __init__(self, *, clock: Clock, tick_seconds: float, name: str) -> None:
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._loop_name = name
        self._wake = asyncio.Event()
        self._ticks = 0
        self._messages: collections.deque[Any] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._ticker: Timer | None = None
        self.failed: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._loop_name)
        self._schedule_tick()

    async def _stop_loop(self) -> None:
        """Stop ticking and end the task (whatever it was doing is abandoned)."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _schedule_tick(self) -> None:
        self._ticker = self._clock.call_later(self._tick_seconds, self._on_tick)

    def _on_tick(self) -> None:
        if self._wants_tick():
            self._ticks += 1
            self._wake.set()
        self._schedule_tick()

    def _wants_tick(self) -> bool:
        """Whether this tick is worth feeding (a core with nothing to time out needs none)."""
        return True

    # ------------------------------------------------------------------ inputs

    def _queue_message(self, message: Any) -> bool:
        """Queue a peer's message; False when the inbox is full (the peer retries)."""
        if len(self._messages) >= INBOX_LIMIT:
            return False
        self._messages.append(message)
        self._wake.set()
        return True

    def _feed_ticks_and_messages(self) -> None:
        self._feed_ticks()
        self._feed_messages()

    def _feed_ticks(self) -> None:
        core = self.core
        while self._ticks:
            self._ticks -= 1
            core.tick()
            self._after_tick()

    def _feed_messages(self) -> None:
        core = self.core
        while self._messages:
            core.step(self._messages.popleft())

    def _after_tick(self) -> None:
        """Called after each tick is fed (a driver's own timers); nothing by default."""
        return None

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._halted():
                    continue
                self._feed_core()
                while not self._halted() and self.core.has_ready():
                    await self._handle_ready(self.core.ready())
                    if not self._halted():
                        self._feed_core()
                self._after_readys()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failed = error
            self._fail(error)

    def _halted(self) -> bool:
        """Whether nothing more may happen (a process about to die at a crash point)."""
        return False

    @abc.abstractmethod
    def _feed_core(self) -> None:
        """Feed the core everything queued, in the order its protocol wants."""

    @abc.abstractmethod
    async def _handle_ready(self, ready: Any) -> None:
        """Act on one Ready in the contract's order, then advance the core."""

    def _after_readys(self) -> None:
        """Called once the core has no Ready left; nothing by default."""
        return None

    @abc.abstractmethod
    def _fail(self, error: Exception) -> None:
        """The loop stopped on `error` (`failed` is set): say so and fail what waits."""
