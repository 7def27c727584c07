"""Tables of the CLI, laid out by rich: plain text off a terminal, a bold header on one."""

from __future__ import annotations

import io
import os
import pty

from distlab.cli.common import format_table, print_table


def test_columns_are_fitted_two_spaces_apart_and_none_is_a_dash() -> None:
    text = format_table(("id", "address", "pid"),
                        [[1, "127.0.0.1:7001", 123], [22, "h:1", None]])
    assert text.splitlines() == [
        "id  address         pid",
        "1   127.0.0.1:7001  123",
        "22  h:1             -",
    ]


def test_cells_are_text_not_markup_and_rows_never_wrap() -> None:
    wide = "x" * 300
    text = format_table(("[b]name[/b]", "value"), [["[red]k[/red]", wide]])
    assert text.splitlines() == [f"[b]name[/b]   value{' ' * 295}".rstrip(),
                                 f"[red]k[/red]  {wide}"]


def test_print_table_is_plain_off_a_terminal_and_bold_headed_on_one() -> None:
    plain = io.StringIO()
    print_table(("a", "b"), [[1, 2]], file=plain)
    assert plain.getvalue() == "a  b\n1  2\n"
    master, slave = pty.openpty()
    try:
        with open(slave, "w", encoding="utf-8") as terminal:
            print_table(("a", "b"), [[1, 2]], file=terminal)
        written = os.read(master, 65536).decode()
    finally:
        os.close(master)
    assert "\x1b[1ma\x1b[0m" in written and "1" in written
