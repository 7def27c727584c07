"""Message events with their vector clocks, in ShiViz's log format.

ShiViz (Beschastnikh et al., "Debugging distributed systems", CACM 2016) draws a log as a
space-time diagram. With its default parser, `(?<event>.*)\\n(?<host>\\S*) (?<clock>{.*})`, each
event is two lines: a description, then the host and its clock as a JSON object in which the
host's own entry counts its events one by one from 1.

distlab's descriptions name the message and the other end, so that a reader (and `pair_events`)
can tell which send a receive is of:

    send raft g0 to node-2: AppendEntries(...)
    node-1 {"node-1": 7, "node-2": 3}
    receive raft g0 from node-1 #7: AppendEntries(...)
    node-2 {"node-1": 7, "node-2": 5}

`#7` is the sender's own entry in the clock the message carried: the number of its send event.

`MessageClock` is one process's clock over the messages it sends and receives, writing each
event to a log function (a node's file, the simulator's); `parse_log` and `problems_of` read a
log back and check it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from distlab.core.vclock import ProcessClock, VectorClock

# ShiViz's default log-parsing expression, in its own notation (named groups `(?<name>`).
SHIVIZ_DEFAULT_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"

SEND = "send"
RECEIVE = "receive"

_CLOCK_LINE = re.compile(r"(?P<host>\S+) (?P<clock>\{.*\})")
_MESSAGE = re.compile(
    r"(?P<kind>send|receive) (?P<service>\S+) g(?P<group>\d+) (?:to|from) (?P<peer>\S+)"
    r"(?: #(?P<sent_as>\d+))?: (?P<what>.*)")


def host_name(node: int) -> str:
    """A node's name in clocks and logs, the same as its `service.name`."""
    return f"node-{node}"


def clock_json(clock: VectorClock) -> str:
    """A clock as ShiViz reads it (and as spans carry it): a JSON object, host -> count."""
    # By hand: json.dumps costs several times more, and a log of every message writes many.
    return "{" + ", ".join(f"{_quoted(process)}: {count}"
                           for process, count in sorted(clock.counts.items())) + "}"


def _quoted(name: str) -> str:
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'"{name}"'
    return json.dumps(name)


def format_event(description: str, host: str, clock: VectorClock) -> str:
    """One event's two lines, newline-terminated."""
    if "\n" in description or "\r" in description:
        description = description.replace("\r", " ").replace("\n", " ")
    if len(host.split()) != 1 or host.split()[0] != host:
        raise ValueError(f"a ShiViz host name has no spaces: {host!r}")
    return f"{description}\n{host} {clock_json(clock)}\n"


def describe_send(service: str, group: int, recipient: str, what: str) -> str:
    return f"{SEND} {service} g{group} to {recipient}: {what}"


def describe_receive(service: str, group: int, sender: str, carried: VectorClock | None,
                     what: str) -> str:
    sent_as = f" #{carried.get(sender)}" if carried is not None and carried.get(sender) else ""
    return f"{RECEIVE} {service} g{group} from {sender}{sent_as}: {what}"


class MessageClock:
    """One process's vector clock over its messages; `log`, when given, receives each event's
    ShiViz text."""

    def __init__(self, host: str, log: Callable[[str], object] | None = None,
                 start: VectorClock | None = None) -> None:
        self.host = host
        self.process = ProcessClock(host, start)
        self._log = log

    @property
    def now(self) -> VectorClock:
        return self.process.now

    @property
    def logging(self) -> bool:
        return self._log is not None

    def sent(self, service: str, group: int, recipient: str,
             what: Callable[[], str]) -> VectorClock:
        """Stamp a send; `what` describes the message, called only when there is a log."""
        stamp = self.process.tick()
        if self._log is not None:
            self._log(format_event(describe_send(service, group, recipient, what()),
                                   self.host, stamp))
        return stamp

    def received(self, service: str, group: int, sender: str, carried: VectorClock | None,
                 what: Callable[[], str]) -> VectorClock:
        """Stamp the receipt of a message that carried `carried` (None: no clock)."""
        stamp = self.process.receive(carried)
        if self._log is not None:
            self._log(format_event(describe_receive(service, group, sender, carried, what()),
                                   self.host, stamp))
        return stamp


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event read back from a log."""

    line: int  # of its description, counting from 1
    host: str
    clock: VectorClock
    description: str
    kind: str | None = None  # SEND, RECEIVE, or None for an event of another kind
    service: str = ""
    group: int = 0
    peer: str = ""
    # For a receive: the number of the send event it receives, when the message said.
    sent_as: int | None = None

    @property
    def number(self) -> int:
        """This event's number among its host's events."""
        return self.clock.get(self.host)


class MalformedLog(ValueError):
    """A log that is not in the format above; the message names the line."""


def parse_log(text: str) -> list[LoggedEvent]:
    """Every event of `text`, in order; a blank line between events is allowed."""
    lines = text.splitlines()
    events = []
    index = 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        if index + 1 >= len(lines):
            raise MalformedLog(f"line {index + 1}: an event without its clock line")
        match = _CLOCK_LINE.fullmatch(lines[index + 1])
        if match is None:
            raise MalformedLog(f"line {index + 2}: expected 'HOST {{clock}}', got "
                               f"{lines[index + 1][:80]!r}")
        try:
            counts = json.loads(match["clock"])
            clock = VectorClock(counts)
        except (ValueError, TypeError, AttributeError) as error:
            raise MalformedLog(f"line {index + 2}: a clock that is not a JSON object of "
                               f"counts: {error}") from None
        description = lines[index]
        message = _MESSAGE.fullmatch(description)
        if message is None:
            events.append(LoggedEvent(index + 1, match["host"], clock, description))
        else:
            events.append(LoggedEvent(
                index + 1, match["host"], clock, description, kind=message["kind"],
                service=message["service"], group=int(message["group"]), peer=message["peer"],
                sent_as=int(message["sent_as"]) if message["sent_as"] else None))
        index += 2
    return events


def problems_of(events: list[LoggedEvent]) -> list[str]:
    """What is wrong with a log as a record of message events: a host whose own count does
    not go up one event at a time (what ShiViz requires), a receive whose send is missing,
    or one whose clock does not come after its send's. Empty when nothing is."""
    problems = []
    last: dict[str, int] = {}
    sends: dict[tuple[str, int], LoggedEvent] = {}
    for event in events:
        expected = last.get(event.host, 0) + 1
        if event.number != expected:
            problems.append(f"line {event.line}: {event.host}'s event is number "
                            f"{event.number}, not {expected}")
        last[event.host] = event.number
        if event.kind == SEND:
            sends[event.host, event.number] = event
    for event in events:
        if event.kind != RECEIVE or event.sent_as is None:
            continue
        send = sends.get((event.peer, event.sent_as))
        if send is None:
            problems.append(f"line {event.line}: {event.host} receives {event.peer}'s event "
                            f"#{event.sent_as}, which is not a send in the log")
        elif not send.clock.happened_before(event.clock):
            problems.append(f"line {event.line}: {event.host}'s receive {event.clock} does "
                            f"not come after its send {send.clock} (line {send.line})")
    return problems
