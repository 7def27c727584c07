"""What every sub-command shares: exit statuses, the usage error, tables (laid out by rich)."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:
    from rich.table import Table

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130

# Wide enough for any table distlab prints: rich lays a table out within a console width,
# and a row cut or folded at a terminal's edge is worse than one that runs past it.
_TABLE_MAX_WIDTH = 1000


class UsageError(Exception):
    """Bad usage or input: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], header_style: str
           ) -> Table:
    """Columns two spaces apart, fitted to their content, never wrapped; None shows as -."""
    # rich is imported where a table is drawn, not with this module: every process imports
    # it (a worker too), and most never print a table.
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1),
                  header_style=header_style, show_lines=False)
    for header in headers:
        table.add_column(Text(str(header)), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(Text("-" if value is None else str(value)) for value in row))
    return table


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The table as plain text (no colour, the same in a pipe as on a terminal)."""
    from rich.console import Console

    buffer = io.StringIO()
    # As wide as it needs: a table is never wrapped to fit a terminal.
    console = Console(file=buffer, width=_TABLE_MAX_WIDTH, no_color=True, highlight=False,
                      emoji=False, force_terminal=False)
    console.print(_table(headers, rows, header_style=""))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                file: TextIO | None = None) -> None:
    """Print the table to `file` (stdout), its header in bold on a terminal; elsewhere it is
    `format_table`'s plain text."""
    stream = file if file is not None else sys.stdout
    if not stream.isatty():
        print(format_table(headers, rows), file=stream)
        return
    from rich.console import Console

    console = Console(file=stream, width=_TABLE_MAX_WIDTH, highlight=False, emoji=False)
    console.print(_table(headers, rows, header_style="bold"), crop=False)
