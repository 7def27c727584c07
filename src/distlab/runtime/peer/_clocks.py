"""A node's vector clock over the peer messages it sends and receives, and the ShiViz log
file it writes them to.

One clock per node, whatever instance a message is for: the process is what ShiViz draws as
one line. Every send and every receive is an event; a send's stamp travels in the envelope,
and the receipt merges it. With a log, each event is written as ShiViz reads it (see
`distlab.core.vclock_log`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from distlab.core.ids import NodeId
from distlab.core.vclock import VectorClock
from distlab.core.vclock_log import MalformedLog, MessageClock, host_name, parse_log

# How much of a log is read at a time, from its end, to find a host's last event.
RESUME_SCAN_BYTES = 1 << 20


class ShivizLog:
    """A ShiViz log file that one process or several append to.

    Each event is one write() on a file opened with O_APPEND, so the events of nodes sharing a
    file never mix inside an event, and nothing waits in a buffer when the process dies.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, text: str) -> None:
        if self._fd is not None:
            os.write(self._fd, text.encode("utf-8", "replace"))

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def last_clock(path: Path, host: str) -> VectorClock | None:
    """`host`'s clock at its last event in the log at `path`, so that a restarted process
    carries on counting where it stopped: ShiViz wants each host's events numbered one by
    one, and the restarted process did follow the earlier one (it read what that one wrote
    to disk). The file is read backwards a chunk at a time, as far as the host's last event;
    other nodes may have written much since."""
    marker = f"\n{host} {{".encode()
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return None
    with file:
        position = file.seek(0, os.SEEK_END)
        # The start of the chunk read last, up to its first newline: the end of a line that
        # began in the chunk before it.
        carry = b""
        while position > 0:
            start = max(0, position - RESUME_SCAN_BYTES)
            file.seek(start)
            chunk = file.read(position - start)
            data = (b"\n" if start == 0 else b"") + chunk + carry
            found = _last_clock_in(data, marker)
            if found is not None:
                return found
            newline = chunk.find(b"\n")
            carry = chunk[:newline + 1] if newline >= 0 else chunk + carry
            position = start
    return None


def _last_clock_in(data: bytes, marker: bytes) -> VectorClock | None:
    end = len(data)
    while (index := data.rfind(marker, 0, end)) >= 0:
        line_end = data.find(b"\n", index + 1)
        if line_end >= 0:  # a line cut short by a crash has no newline: look further back
            line = data[index + 1 : line_end].decode("utf-8", "replace")
            with contextlib.suppress(MalformedLog, IndexError):
                return parse_log(f"x\n{line}\n")[0].clock
        end = index
    return None


class PeerClock:
    """A node's `MessageClock` as the peer transport uses it: messages are payloads of a
    service, described by the service's own describer where one is registered."""

    def __init__(self, node_id: NodeId, log: ShivizLog | None = None) -> None:
        host = host_name(node_id)
        start = last_clock(log.path, host) if log is not None else None
        self.clock = MessageClock(host, log.write if log is not None else None, start)
        self._log = log
        self._describers: dict[str, Callable[[bytes], str]] = {}

    def describe_with(self, service: str, describe: Callable[[bytes], str]) -> None:
        """How `service`'s payloads read in the log (a decoder and the protocol's describe)."""
        self._describers[service] = describe

    def _describer(self, service: str, payload: bytes) -> Callable[[], str]:
        def what() -> str:
            describe = self._describers.get(service)
            if describe is None:
                return f"{len(payload)} bytes"
            try:
                return describe(payload)
            except Exception as error:  # a malformed payload is the router's to reject
                return f"{len(payload)} bytes that do not decode ({type(error).__name__})"
        return what

    def on_send(self, recipient: NodeId, service: str, group: int, payload: bytes
                ) -> VectorClock:
        if self._log is None:  # traced only: the stamp is all that is needed
            return self.clock.process.tick()
        return self.clock.sent(service, group, host_name(recipient),
                               self._describer(service, payload))

    def on_receive(self, sender: NodeId, service: str, group: int, payload: bytes,
                   carried: VectorClock | None) -> VectorClock:
        if self._log is None:
            return self.clock.process.receive(carried)
        return self.clock.received(service, group, host_name(sender), carried,
                                   self._describer(service, payload))

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

