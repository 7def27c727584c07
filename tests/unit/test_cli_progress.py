"""The progress facility of long commands: a live bar on a terminal, plain lines elsewhere,
nothing but the events with --json."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator

import pytest

from distlab.cli.progress import Progress


def test_plain_output_has_every_event_and_the_status_now_and_then() -> None:
    stream = io.StringIO()
    with Progress("job", total=10, stream=stream, line_interval=3600) as progress:
        assert not progress.live
        progress.update(1, status="1 of 10")
        progress.update(2, status="2 of 10")  # within the interval: no line
        progress.log("phase two")
        progress.update(3, status="3 of 10")
    assert stream.getvalue().splitlines() == ["1 of 10", "phase two"]


def test_a_status_comes_again_only_when_it_changed() -> None:
    stream = io.StringIO()
    progress = Progress("job", stream=stream, line_interval=0, prefix=lambda: "> ")
    for status in ("a", "a", "b", "b", "a"):
        progress.update(status=status)
    progress.close()
    assert stream.getvalue().splitlines() == ["> a", "> b", "> a"]
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()


def test_json_output_gets_the_events_alone() -> None:
    stream = io.StringIO()
    with Progress("job", total=2, json=True, stream=stream, line_interval=0) as progress:
        progress.update(1, status="half way")
        progress.log("an event")
    assert stream.getvalue() == "an event\n"


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, int]]:
    master, slave = pty.openpty()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        yield stream, master
    finally:
        stream.close()
        os.close(master)


def read_all(master: int) -> str:
    chunks = []
    while True:
        os.set_blocking(master, False)
        try:
            chunk = os.read(master, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_live_bar_with_events_above_it(
        terminal: tuple[io.TextIOWrapper, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    stream, master = terminal
    with Progress("seeds", total=4, stream=stream) as progress:
        assert progress.live
        progress.update(2, status="seed 2: ok")
        progress.log("seed 3 failed")
        progress.update(4, status="seed 4: ok")
    stream.flush()
    written = read_all(master)
    assert "seeds" in written and "seed 3 failed" in written and "100%" in written
    assert "\u2501" in written and "\x1b[" in written


def test_a_dumb_terminal_gets_plain_lines(terminal: tuple[io.TextIOWrapper, int],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    stream, _ = terminal
    with Progress("seeds", total=4, stream=stream) as progress:
        assert not progress.live
