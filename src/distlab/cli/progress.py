"""How a long command shows it is getting on: one facility for `distlab test`, `mr run`,
`bench` and `sim --seeds`.

    with Progress("distlab sim raft", total=200, json=args.json) as progress:
        for done, seed in enumerate(seeds, start=1):
            ...
            progress.update(done, status=f"seed {seed}: ok")
            if failed:
                progress.log(f"seed {seed}: {violation}")

`update` moves the bar (and its status text) and `log` reports an event. Where the output
goes decides how they look:

- a terminal: a live bar (rich's) on stderr with the description, the share done, the time
  taken and the status; `log` lines print above it, and the bar stays when the command ends;
- not a terminal (a pipe, a file, CI): plain lines, without control characters: every `log`
  line, and the status when it changed, at most every `line_interval` seconds;
- `json=True`: the command's stdout is its JSON document, so nothing is added: no bar and
  no status lines, only the `log` lines, on stderr as before.

`prefix`, when given, is put before every plain line (`distlab test` puts the seconds since
it started). Everything goes to `stream`, stderr unless another is given.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

# rich is imported when a bar is drawn: in a pipe, a file or JSON mode it is not needed,
# and importing it is a good part of a short command's start-up.
if TYPE_CHECKING:
    from rich import progress as rich_progress

LINE_INTERVAL_SECONDS = 2.0


def is_live_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal that can redraw a bar (not TERM=dumb)."""
    try:
        interactive = stream.isatty()
    except ValueError:  # closed
        return False
    return interactive and os.environ.get("TERM", "") != "dumb"


class Progress:
    """A command's progress: a live bar on a terminal, plain lines elsewhere (see the module
    docstring). Use it as a context manager, or call `close` when the command is done."""

    def __init__(self, description: str, *, total: float | None = None, json: bool = False,
                 stream: TextIO | None = None, prefix: Callable[[], str] | None = None,
                 line_interval: float = LINE_INTERVAL_SECONDS) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._prefix = prefix
        self._json = json
        self._line_interval = line_interval
        # The last plain line and when it was written: a status is not repeated, and comes
        # at most every `line_interval` seconds after any line.
        self._last_line: str | None = None
        self._last_line_at: float | None = None
        self._bar: rich_progress.Progress | None = None
        self._task: rich_progress.TaskID | None = None
        if not json and is_live_terminal(self._stream):
            from rich import progress as rich_progress
            from rich.console import Console

            console = Console(file=self._stream, highlight=False, emoji=False)
            self._bar = rich_progress.Progress(
                rich_progress.TextColumn("{task.description}", style="bold", markup=False),
                rich_progress.BarColumn(),
                rich_progress.TaskProgressColumn(),
                rich_progress.TimeElapsedColumn(),
                rich_progress.TextColumn("{task.fields[status]}", markup=False),
                console=console)
            self._task = self._bar.add_task(description, total=total, status="")
            self._bar.start()

    @property
    def live(self) -> bool:
        """True when a live bar is drawn (the output is a terminal and not JSON)."""
        return self._bar is not None

    def update(self, completed: float | None = None, *, total: float | None = None,
               status: str | None = None) -> None:
        """Where the work stands: `completed` of `total` (either may be left as it was), and
        a short status text."""
        if self._bar is not None and self._task is not None:
            if status is None:
                self._bar.update(self._task, completed=completed, total=total)
            else:
                self._bar.update(self._task, completed=completed, total=total, status=status)
            return
        if self._json or status is None or status == self._last_line:
            return
        now = time.monotonic()
        if self._last_line_at is None or now - self._last_line_at >= self._line_interval:
            self._write(status)

    def log(self, line: str) -> None:
        """An event worth a line of its own, whatever the output is."""
        if self._bar is not None:
            from rich.text import Text

            self._bar.console.print(Text(self._prefixed(line)))
            return
        self._write(line)

    def close(self) -> None:
        """Stop redrawing; the bar, in its last state, stays on the terminal."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _prefixed(self, line: str) -> str:
        return (self._prefix() if self._prefix is not None else "") + line

    def _write(self, line: str) -> None:
        print(self._prefixed(line), file=self._stream, flush=True)
        self._last_line, self._last_line_at = line, time.monotonic()
