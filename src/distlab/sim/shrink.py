"""Shrinking a failing run's fault schedule to a few events that still make it fail.

Delta debugging (Zeller's ddmin) over the schedule's events: the seed, and so the cluster,
the options, the clients and the network's draws, stay as they were; only faults are taken
away. A candidate schedule is kept when its run fails the same way (the same invariant, or
the same kind of failure), so the result explains the original failure rather than another
one. Ends 1-minimal: no single event can be removed from the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from distlab.sim.faults import Fault
from distlab.sim.harness import ProtocolSpec, RunPlan, RunResult, execute

# Enough runs to shrink a few dozen events to a handful; each run is a fraction of a second.
MAX_RUNS = 400

_PREFIX = re.compile(r"^seed=\d+ t=[\d.]+ms: ")
_GROUP = re.compile(r"^group \d+: ")


def failure_kind(failure: str) -> str:
    """What failed, without where and when: the invariant's name, or the kind of failure."""
    text = _PREFIX.sub("", failure).split(" (replay: ")[0]
    if text.startswith("invariant violated: "):
        text = _GROUP.sub("", text[len("invariant violated: "):])
        return "invariant: " + text.split(":")[0]
    if ": the driver failed: " in text:
        return "driver failed: " + text.split(": the driver failed: ")[1].split(":")[0]
    return text.split(":")[0]


@dataclass(frozen=True, slots=True)
class Shrunk:
    original: RunResult
    result: RunResult
    schedule: tuple[Fault, ...]
    runs: int


def shrink(spec: ProtocolSpec, plan: RunPlan, *, max_runs: int = MAX_RUNS,
           progress: Callable[[int, int], None] | None = None) -> Shrunk:
    """Reduce `plan`'s schedule; `plan` must fail. `progress(runs, events)` after each try."""
    original, _ = execute(spec, plan)
    if original.ok or original.failure is None:
        raise ValueError(f"seed {plan.seed} does not fail; there is nothing to shrink")
    kind = failure_kind(original.failure)
    runs = 0
    best = original

    def fails(events: Sequence[Fault]) -> bool:
        nonlocal runs, best
        runs += 1
        result, _ = execute(spec, replace(plan, schedule=tuple(events)))
        if progress is not None:
            progress(runs, len(events))
        if not result.ok and result.failure is not None and failure_kind(result.failure) == kind:
            best = result
            return True
        return False

    events = list(plan.schedule)
    if events and fails([]):
        return Shrunk(original, best, (), runs)
    granularity = 2
    while len(events) >= 2 and runs < max_runs:
        size = -(-len(events) // granularity)
        chunks = [events[start:start + size] for start in range(0, len(events), size)]
        for index in range(len(chunks)):
            if runs >= max_runs:
                break
            complement = [event for number, chunk in enumerate(chunks) if number != index
                          for event in chunk]
            if fails(complement):
                events = complement
                granularity = max(granularity - 1, 2)
                break
        else:
            if granularity >= len(events):
                break
            granularity = min(len(events), granularity * 2)
    # One at a time until nothing more can go.
    removed = True
    while removed and len(events) > 1 and runs < max_runs:
        removed = False
        for index in range(len(events)):
            candidate = events[:index] + events[index + 1:]
            if fails(candidate):
                events = candidate
                removed = True
                break
    # `best` is the run of the last schedule kept: the one returned.
    return Shrunk(original, best, tuple(events), runs)
