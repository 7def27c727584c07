"""Calls that end by their deadline even when gRPC does not end them.

Every stub call passes `timeout=`, and gRPC ends the call when it passes. But the await on a
call returns only once its completion reaches this event loop, through gRPC's poller thread
or through the interceptors the caller installed: a completion that never arrives, or an
interceptor that never returns, holds the awaiting task for ever, and with it an operation
whose budget the client promises to keep. So each call is also bounded here, by the event
loop's own clock, a little past its deadline (gRPC's answer wins whenever it comes at all);
a call cut off this way is one whose outcome is unknown, as after DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

# How long past its own deadline a call may run before the client gives up on it. Long
# enough that gRPC's DEADLINE_EXCEEDED arrives first on a busy loop; short against a budget.
CALL_GRACE_SECONDS = 0.5

R = TypeVar("R")


class CallOverran(Exception):
    """A call was still running `grace` seconds past its `timeout` and was cancelled."""

    def __init__(self, timeout: float, grace: float) -> None:
        super().__init__(f"no answer within {timeout:g} s, nor {grace:g} s past that "
                         "deadline; the call was cancelled")
        self.timeout = timeout


async def bounded(call: Awaitable[R], timeout: float, grace: float = CALL_GRACE_SECONDS
                  ) -> R:
    """The result of `call`, a call made with `timeout`; CallOverran when it has not ended
    `grace` seconds after that (cancelling it)."""
    scope = asyncio.timeout(timeout + grace)
    try:
        async with scope:
            return await call
    except TimeoutError:
        if not scope.expired():
            raise  # raised by the call itself, not by this bound
        raise CallOverran(timeout, grace) from None
