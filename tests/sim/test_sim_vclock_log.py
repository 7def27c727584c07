"""`distlab sim PROTOCOL --vclock-log FILE`: a simulated run's messages with their vector
clocks, checked from the clocks alone: every receive comes after its send, and elections on
the two sides of a partition are concurrent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from distlab.cli.main import main
from distlab.core.vclock_log import LoggedEvent, host_name, parse_log, problems_of

ELECTION = re.compile(r"(PreVote|RequestVote)\(")
VIRTUAL_TIME = re.compile(r"\(t=([\d.]+) ms\)$")
# Seeds of 5-node runs with a partition; the first of them whose log shows elections on both
# sides is checked (several, so that a change in how plans are drawn does not leave none).
SEEDS = (5, 2, 19, 29, 14)


def simulate(capsys: pytest.CaptureFixture[str], protocol: str, seed: int, log: Path
             ) -> dict[str, object]:
    assert main(["sim", protocol, "--seed", str(seed), "--nodes", "5", "--no-disk-faults",
                 "--no-clock-faults", "--json", "--vclock-log", str(log)]) == 0
    body: dict[str, object] = json.loads(capsys.readouterr().out)
    return body


def partitions(trace: list[str]) -> list[tuple[list[set[str]], float, float]]:
    """(sides, from, until) of each partition in the run's trace, until the next partition
    or healing: the only events that let messages cross again."""
    windows = []
    current: tuple[list[set[str]], float] | None = None
    for line in trace:
        at_text, _, text = line.strip().partition(" ")
        at = float(at_text)
        match = re.fullmatch(r"partition (.+)", text)
        if match is None and text != "network healed":
            continue
        if current is not None:
            windows.append((*current, at))
        current = None
        if match is not None:
            current = ([{host_name(int(name[1:])) for name in side.split(",")}
                        for side in match[1].split(" | ")], at)
    return windows


def elections_across(events: list[LoggedEvent], trace: list[str]
                     ) -> list[tuple[LoggedEvent, LoggedEvent]]:
    """Pairs of vote requests sent on different sides of a partition while it held."""
    requests = []
    for event in events:
        if event.kind == "send" and ELECTION.match(event.description.split(": ", 1)[1]):
            time = VIRTUAL_TIME.search(event.description)
            assert time is not None, event.description
            requests.append((event, float(time[1])))
    pairs = []
    for sides, start, end in partitions(trace):
        during = [event for event, at in requests if start < at < end]
        for index, side in enumerate(sides):
            for other in sides[index + 1:]:
                pairs += [(a, b) for a in during if a.host in side
                          for b in during if b.host in other]
    return pairs


def test_a_raft_run_with_a_partition_shows_concurrent_elections(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "raft.shiviz"
    for seed in SEEDS:
        body = simulate(capsys, "raft", seed, log)
        events = parse_log(log.read_text())
        assert events, "the log is empty"
        assert problems_of(events) == [], f"seed {seed}"
        receives = [event for event in events if event.kind == "receive"]
        assert receives and all(event.sent_as is not None for event in receives)
        trace = body["trace"]
        assert isinstance(trace, list)
        pairs = elections_across(events, trace)
        if pairs:
            break
    else:
        pytest.fail(f"none of seeds {SEEDS} had elections on both sides of a partition")
    for first, second in pairs:
        assert first.clock.concurrent_with(second.clock), (
            f"seed {seed}: {first.host} line {first.line} and {second.host} line "
            f"{second.line} campaigned on opposite sides of a partition, yet "
            f"{first.clock.compare(second.clock).value}")
    # The same seed writes the same log.
    simulate(capsys, "raft", seed, tmp_path / "again.shiviz")
    assert (tmp_path / "again.shiviz").read_text() == log.read_text()


def test_a_paxos_run_writes_the_same_log(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    log = tmp_path / "paxos.shiviz"
    simulate(capsys, "paxos", 5, log)
    events = parse_log(log.read_text())
    assert {event.kind for event in events} == {"send", "receive"}
    assert {event.service for event in events} == {"paxos"}
    assert problems_of(events) == []


def test_the_log_needs_one_seed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["sim", "raft", "--seeds", "2", "--vclock-log", str(tmp_path / "x")]) == 2
    assert "--vclock-log writes one run's messages: give --seed N" in capsys.readouterr().err
