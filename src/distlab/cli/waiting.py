"""Progress while a command waits: nothing for the first second, then a line on stderr every
few seconds saying what it waits for. Plain lines rather than a spinner, so that a log file or
a pipe reads them as well as a terminal, and stdout stays the command's result alone."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable

FIRST_LINE_AFTER_SECONDS = 1.0
LINE_EVERY_SECONDS = 3.0


@contextlib.asynccontextmanager
async def progress_lines(
    prog: str, describe: Callable[[float], str],
    first_after: float = FIRST_LINE_AFTER_SECONDS, every: float = LINE_EVERY_SECONDS,
) -> AsyncIterator[None]:
    """While the block runs, print `prog: describe(seconds waited)` to stderr once it has run
    for `first_after` seconds, then every `every` seconds until it ends."""
    clock = asyncio.get_running_loop()
    started = clock.time()

    async def report() -> None:
        await asyncio.sleep(first_after)
        while True:
            print(f"{prog}: {describe(clock.time() - started)}", file=sys.stderr, flush=True)
            await asyncio.sleep(every)

    reporter = asyncio.create_task(report())
    try:
        yield
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
