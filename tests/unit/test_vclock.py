"""Vector clocks: the order is a partial order matching happened-before, merge is a
semilattice join, and a receipt comes after its send; and the ShiViz log round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distlab.core.vclock import Order, ProcessClock, VectorClock
from distlab.core.vclock_log import (
    describe_receive,
    describe_send,
    format_event,
    parse_log,
    problems_of,
)
from distlab.runtime.peer import _clocks

PROCESSES = ("a", "b", "c", "d")
clocks = st.dictionaries(st.sampled_from(PROCESSES), st.integers(0, 6)).map(VectorClock)


@given(clocks)
def test_the_order_is_reflexive(x: VectorClock) -> None:
    assert x <= x
    assert x.compare(x) is Order.EQUAL


@given(clocks, clocks)
def test_the_order_is_antisymmetric_and_compare_agrees_with_it(x: VectorClock,
                                                               y: VectorClock) -> None:
    if x <= y and y <= x:
        assert x == y
    expected = {(True, True): Order.EQUAL, (True, False): Order.BEFORE,
                (False, True): Order.AFTER, (False, False): Order.CONCURRENT}[x <= y, y <= x]
    assert x.compare(y) is expected
    assert y.compare(x) is {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE}.get(
        expected, expected)


@given(clocks, clocks, clocks)
def test_the_order_is_transitive(x: VectorClock, y: VectorClock, z: VectorClock) -> None:
    if x <= y and y <= z:
        assert x <= z
    if x < y and y < z:
        assert x < z


@given(clocks, clocks)
def test_merge_is_commutative_and_the_least_upper_bound(x: VectorClock, y: VectorClock
                                                        ) -> None:
    joined = x.merge(y)
    assert joined == y.merge(x)
    assert x <= joined and y <= joined
    for process in PROCESSES:
        assert joined.get(process) == max(x.get(process), y.get(process))


@given(clocks, clocks, clocks)
def test_merge_is_associative(x: VectorClock, y: VectorClock, z: VectorClock) -> None:
    assert x.merge(y).merge(z) == x.merge(y.merge(z))


@given(clocks)
def test_merge_is_idempotent(x: VectorClock) -> None:
    assert x.merge(x) == x


@given(clocks, clocks, st.sampled_from(PROCESSES))
def test_a_receive_is_after_its_send_and_after_the_receivers_past(
        sender_now: VectorClock, receiver_now: VectorClock, process: str) -> None:
    sent = sender_now.increment("z")
    received = receiver_now.receive(process, sent)
    assert sent.happened_before(received)
    assert receiver_now.happened_before(received)
    assert received.get(process) == receiver_now.merge(sent).get(process) + 1


@given(st.lists(st.tuples(st.sampled_from(PROCESSES), st.sampled_from(PROCESSES)), max_size=30))
def test_clocks_order_events_as_messages_do(messages: list[tuple[str, str]]) -> None:
    """Run message exchanges; an event's clock is before another's exactly when a chain of
    local steps and messages leads from the first to the second."""
    process_clocks = {name: ProcessClock(name) for name in PROCESSES}
    events: list[tuple[str, VectorClock]] = []
    # event index -> the indices of the events it directly follows
    follows: list[set[int]] = []
    last: dict[str, int] = {}
    for source, destination in messages:
        stamp = process_clocks[source].tick()
        follows.append({last[source]} if source in last else set())
        send = last[source] = len(events)
        events.append((source, stamp))
        received = process_clocks[destination].receive(stamp)
        follows.append({send} | ({last[destination]} if destination in last else set()))
        last[destination] = len(events)
        events.append((destination, received))

    def reachable(start: int) -> set[int]:
        seen: set[int] = set()
        todo = [start]
        while todo:
            for earlier in follows[todo.pop()]:
                if earlier not in seen:
                    seen.add(earlier)
                    todo.append(earlier)
        return seen

    for index, (_, clock) in enumerate(events):
        before = reachable(index)
        for other, (_, other_clock) in enumerate(events):
            if other != index:
                assert other_clock.happened_before(clock) == (other in before)


def test_concurrent_events_compare_as_concurrent() -> None:
    a, b = ProcessClock("a"), ProcessClock("b")
    shared = a.tick()
    b.receive(shared)
    assert a.tick().concurrent_with(b.tick())


def test_negative_counts_are_refused_and_zeros_do_not_count() -> None:
    with pytest.raises(ValueError, match="counts events"):
        VectorClock({"a": -1})
    assert VectorClock({"a": 0, "b": 2}) == VectorClock({"b": 2})
    assert hash(VectorClock({"a": 0, "b": 2})) == hash(VectorClock({"b": 2}))


def test_a_log_round_trips_and_its_receives_pair_with_their_sends() -> None:
    one, two = ProcessClock("node-1"), ProcessClock("node-2")
    sent = one.tick()
    text = format_event(describe_send("raft", 0, "node-2", "Vote(term 3)"), "node-1", sent)
    received = two.receive(sent)
    text += format_event(describe_receive("raft", 0, "node-1", sent, "Vote(term 3)"),
                         "node-2", received)
    events = parse_log(text)
    assert [(event.kind, event.host, event.clock) for event in events] == [
        ("send", "node-1", sent), ("receive", "node-2", received)]
    assert events[1].sent_as == 1 and events[1].peer == "node-1"
    assert problems_of(events) == []


def test_a_receive_that_precedes_its_send_is_reported() -> None:
    text = (format_event(describe_send("raft", 0, "node-2", "x"), "node-1",
                         VectorClock({"node-1": 1, "node-2": 1}))
            + format_event(describe_receive("raft", 0, "node-1", VectorClock({"node-1": 1}),
                                            "x"), "node-2", VectorClock({"node-2": 1})))
    problems = problems_of(parse_log(text))
    assert len(problems) == 1 and "does not come after its send" in problems[0]


def test_a_restarted_node_finds_its_last_clock_however_far_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_clocks, "RESUME_SCAN_BYTES", 64)  # many chunks, lines across them
    one, two = ProcessClock("node-1"), ProcessClock("node-2")
    text = "".join(format_event("local", "node-1", one.tick()) for _ in range(3))
    text += "".join(format_event(describe_send("raft", 0, "node-1", "x" * n), "node-2",
                                 two.tick()) for n in range(200))
    path = tmp_path / "log"
    path.write_text(text + 'torn\nnode-2 {"node-2": 99')  # a last write cut short
    assert _clocks.last_clock(path, "node-1") == one.now
    assert _clocks.last_clock(path, "node-2") == two.now
    assert _clocks.last_clock(path, "node-3") is None
    assert _clocks.last_clock(tmp_path / "missing", "node-1") is None
