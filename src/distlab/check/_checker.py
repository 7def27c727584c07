"""Checking a whole history: partitions by key, taking turns, under time and memory budgets."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from distlab.check._history import History, Key, Operation, Value
from distlab.check._models import (
    MODELS,
    Model,
    apply,
    footprint,
    has_effect_or_constraint,
)
from distlab.check._search import Outcome, PartitionSearch

# Candidate moves a partition may try before the next one takes its turn. Small enough
# that a hard key cannot keep the others waiting for long, large enough that switching
# costs nothing measurable.
SLICE_STEPS = 20_000
ALL_KEYS = "(all keys)"


class Verdict(enum.Enum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """One key's operations and what the search concluded about them."""

    key: Key
    label: str
    operations: tuple[Operation, ...]
    verdict: Verdict
    outcome: Outcome | None
    steps: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    verdict: Verdict
    model: str
    history: History
    partitions: tuple[PartitionReport, ...]
    reason: str
    elapsed: float
    peak_memory_estimate: int

    @property
    def violation(self) -> PartitionReport | None:
        for partition in self.partitions:
            if partition.verdict is Verdict.NOT_LINEARIZABLE:
                return partition
        return None


def check(history: History, model: str | Model | None = None, *, partition: bool = True,
          timeout: float | None = None, max_memory_bytes: int | None = None,
          slice_steps: int = SLICE_STEPS,
          clock: Callable[[], float] = time.monotonic) -> CheckResult:
    """Decide whether `history` is linearizable with respect to `model`.

    Keys are checked separately (unless `partition` is False, which checks the whole
    history as one object whose state maps every key), taking turns of `slice_steps`
    moves so that one hard key cannot hide a violation in another; the first violation
    found ends the check. When `timeout` seconds pass or the estimated memory of the
    search exceeds `max_memory_bytes` first, the verdict is UNKNOWN.
    """
    chosen = _resolve_model(history, model)
    chosen.validate(history)
    started = clock()
    deadline = None if timeout is None else started + timeout
    groups = _partitions(history, partition)
    searches: list[tuple[Key, str, tuple[Operation, ...], PartitionSearch]] = []
    for key, label, operations in groups:
        initial, transition = _specification(history, operations, partition)
        searches.append((key, label, operations, PartitionSearch(
            [op for op in operations if has_effect_or_constraint(op)], initial, transition,
            lambda op: footprint(op, history.absent), register=partition)))

    reason = ""
    peak = 0
    verdict = Verdict.LINEARIZABLE
    active = [(number, search) for number, (*_, search) in enumerate(searches)
              if not search.finished]
    violated = any(s.outcome is not None and not s.outcome.linearizable
                   for *_, s in searches)
    # Each search's latest memory estimate, and their sum, kept up to date turn by turn.
    held = [0] * len(searches)
    total = 0
    while active and not violated and not reason:
        for number, search in active:
            outcome = search.run(slice_steps)
            if outcome is not None and not outcome.linearizable:
                violated = True
                break
            estimate = search.memory_estimate()
            total += estimate - held[number]
            held[number] = estimate
            peak = max(peak, total)
            if max_memory_bytes is not None and peak > max_memory_bytes:
                reason = (f"memory budget of {max_memory_bytes / 2**20:.0f} MiB ran out "
                          f"(search memo estimated at {peak / 2**20:.0f} MiB)")
                break
            if deadline is not None and clock() >= deadline:
                reason = f"time budget of {timeout:g} s ran out"
                break
        active = [(number, search) for number, search in active if not search.finished]

    reports = []
    for key, label, operations, search in searches:
        if search.outcome is None:
            part_verdict = Verdict.UNKNOWN
        elif search.outcome.linearizable:
            part_verdict = Verdict.LINEARIZABLE
        else:
            part_verdict = Verdict.NOT_LINEARIZABLE
        reports.append(PartitionReport(key, label, operations, part_verdict, search.outcome,
                                       search.steps))
        search.release()
    if violated:
        verdict = Verdict.NOT_LINEARIZABLE
        reason = ""
    elif reason or any(r.verdict is Verdict.UNKNOWN for r in reports):
        verdict = Verdict.UNKNOWN
    return CheckResult(verdict=verdict, model=chosen.name, history=history,
                       partitions=tuple(reports), reason=reason,
                       elapsed=clock() - started, peak_memory_estimate=peak)


def _resolve_model(history: History, model: str | Model | None) -> Model:
    if isinstance(model, Model):
        return model
    name = history.default_model if model is None else model
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name]


def _partitions(history: History, partition: bool
                ) -> list[tuple[Key, str, tuple[Operation, ...]]]:
    if not partition:
        return [(None, ALL_KEYS, history.operations)]
    groups: dict[Key, list[Operation]] = {}
    for operation in history.operations:
        groups.setdefault(operation.key, []).append(operation)
    return [(key, "(no key)" if key is None else str(key), tuple(ops))
            for key, ops in groups.items()]


def _specification(history: History, operations: tuple[Operation, ...], partition: bool
                   ) -> tuple[Value, Callable[[Operation, Value], tuple[bool, Value]]]:
    """The initial state and transition function for one partition."""
    absent = history.absent
    if partition:
        return absent, lambda op, state: apply(op, state, absent)
    # One object for all keys: the state is a tuple with one value per key.
    slots: dict[Key, int] = {}
    for operation in operations:
        slots.setdefault(operation.key, len(slots))

    def transition(op: Operation, state: Value) -> tuple[bool, Value]:
        assert isinstance(state, tuple)
        slot = slots[op.key]
        ok, value = apply(op, state[slot], absent)
        return ok, (*state[:slot], value, *state[slot + 1:])

    return (absent,) * len(slots), transition
