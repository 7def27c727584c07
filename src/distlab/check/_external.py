"""The external-consistency checker for timestamped transactions (Spanner, OSDI 2012 §4).

The timestamps a history reports are its claimed serial order; the check is that the claim
holds:

- Real time. A read-write transaction that completed before another read-write transaction
  was invoked has the smaller commit timestamp; a read-only transaction invoked after a
  read-write one completed reads at a timestamp at or above its commit timestamp (commit wait
  makes both hold in Spanner, whichever groups the transactions touch). A snapshot read at a
  timestamp the client chose (`"at"`) is exempt: it asked for the past. A read-only
  transaction that completed before a write began puts no bound on the write's timestamp
  unless they share data, and then the read check below sees it.
- Reads. Replaying the committed writes in timestamp order (`add` adds integers, a missing
  key counts as 0), every read returns the state at its transaction's timestamp: a
  read-only transaction at `ts` sees every commit at or below `ts`; a read-write transaction
  committed at `s` sees every other commit below `s` and its own earlier writes.
- Two committed transactions never write one key at the same timestamp: its state there
  would have no order.

Transactions whose outcome is unknown (`info`) may or may not have committed, at a timestamp
the history does not give. Each read is therefore checked against every state some choice
of them allows: each unknown transaction applied at most once, anywhere above the commit
timestamps of the read-write transactions that completed before it was invoked. That admits
more than a joint choice would (two reads may assume different choices), so it never calls a
correct history wrong; a read with too many possible states to enumerate is counted as
unchecked instead of guessed at.
"""

from __future__ import annotations

import bisect
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from distlab.check._history import Key, Value
from distlab.check._txn_history import Transaction, TxnHistory, read_txn_history

EXTERNAL_MODEL = "external"  # its name among `distlab lincheck --model` values
# States one read may have under the unknown transactions before it counts as unchecked.
MAX_STATES = 4096
_NO_BOUND = -(2**63)


class Consistency(enum.Enum):
    CONSISTENT = "externally consistent"
    VIOLATED = "not externally consistent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Violation:
    """`kind` is `real-time`, `read` or `same-timestamp`; `transactions` are the two the
    message is about (the later one first)."""

    kind: str
    message: str
    transactions: tuple[Transaction, ...]
    key: Key = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "message": self.message,
                "transactions": [txn.as_dict() for txn in self.transactions]}


@dataclass(frozen=True, slots=True)
class ExternalResult:
    verdict: Consistency
    history: TxnHistory
    violations: tuple[Violation, ...]
    reads_checked: int
    reads_unchecked: int
    elapsed: float
    reason: str = ""

    @property
    def violation(self) -> Violation | None:
        return self.violations[0] if self.violations else None


class _Missing:
    """The state of a key never written: reads return None, `add` counts it as 0."""

    def __repr__(self) -> str:
        return "missing"


class _Invalid:
    """The state after an `add` to a value that is not an integer: no read can return it."""

    def __repr__(self) -> str:
        return "invalid"


MISSING = _Missing()
_INVALID = _Invalid()
State: TypeAlias = "Value | _Missing | _Invalid"
Effect: TypeAlias = tuple[tuple[str, Value], ...]  # one transaction's micro-operations on one key


class _Timeout(Exception):
    pass


def check_external(history: TxnHistory, *, timeout: float | None = None,
                   clock: Callable[[], float] = time.monotonic) -> ExternalResult:
    """Check a transaction history for external consistency (see the module docstring)."""
    started = clock()
    checker = _Checker(history, None if timeout is None else started + timeout, clock)
    reason = ""
    try:
        checker.run()
    except _Timeout:
        reason = f"gave up after {timeout:g} s"
    if checker.violations:
        verdict = Consistency.VIOLATED
    elif reason:
        verdict = Consistency.UNKNOWN
    else:
        verdict = Consistency.CONSISTENT
    return ExternalResult(verdict=verdict, history=history,
                          violations=tuple(checker.violations),
                          reads_checked=checker.reads_checked,
                          reads_unchecked=checker.reads_unchecked,
                          elapsed=clock() - started, reason=reason)


def check_external_file(path: str | Path, *, timeout: float | None = None) -> ExternalResult:
    return check_external(read_txn_history(path), timeout=timeout)


@dataclass(slots=True)
class _KeyWrites:
    """One key's committed writes in timestamp order, with the state after each, and the
    unknown transactions that may have written it."""

    timestamps: list[int] = field(default_factory=list)
    writers: list[Transaction] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    states_after: list[State] = field(default_factory=list)
    # Indexes of the writes that set the key outright (a `w` among the transaction's ops).
    overwrites: list[int] = field(default_factory=list)
    unknown: list[tuple[int, Transaction, Effect]] = field(default_factory=list)  # (bound, ..)


class _Checker:
    def __init__(self, history: TxnHistory, deadline: float | None,
                 clock: Callable[[], float]) -> None:
        self.history = history
        self.deadline = deadline
        self.clock = clock
        self.violations: list[Violation] = []
        self.reads_checked = 0
        self.reads_unchecked = 0
        committed = [t for t in history.transactions if t.status == "ok"]
        self.committed_writers = sorted((t for t in committed if t.writes),
                                        key=lambda t: (t.ret, t.index))
        self.completions = [_ret(t) for t in self.committed_writers]
        # For each prefix of committed writers by completion: the one with the highest ts.
        self.highest: list[Transaction] = []
        for writer in self.committed_writers:
            if not self.highest or _ts(writer) > _ts(self.highest[-1]):
                self.highest.append(writer)
            else:
                self.highest.append(self.highest[-1])
        self.keys: dict[Key, _KeyWrites] = {}
        # Unknown transactions that only add commute with every committed write after the
        # key's last outright write, so where they land does not matter, only which did.
        self.commutative_adds = True

    def run(self) -> None:
        self._check_real_time()
        self._index_writes()
        for number, reader in enumerate(self.history.transactions):
            if number % 64 == 0:
                self._tick()
            if reader.status == "ok":
                self._check_reads(reader)

    def _tick(self) -> None:
        if self.deadline is not None and self.clock() > self.deadline:
            raise _Timeout

    def _latest_writer_before(self, call: int) -> Transaction | None:
        """Of the committed read-write transactions that completed before `call`, the one
        with the highest commit timestamp."""
        position = bisect.bisect_left(self.completions, call)
        return self.highest[position - 1] if position else None

    # ---- real time ----

    def _check_real_time(self) -> None:
        for later in self.history.transactions:
            if later.status != "ok":
                continue
            earlier = self._latest_writer_before(later.call)
            if earlier is None:
                continue
            if later.writes and _ts(later) <= _ts(earlier):
                self.violations.append(Violation("real-time", (
                    f"{earlier.describe()} completed before {later.describe()} was invoked, "
                    f"but its commit timestamp {earlier.ts} is not below {later.ts}"),
                    (later, earlier)))
            elif later.read_only and later.at is None and _ts(later) < _ts(earlier):
                self.violations.append(Violation("real-time", (
                    f"{later.describe()} was invoked after {earlier.describe()} completed, "
                    f"but reads at {later.ts}, below that commit timestamp {earlier.ts}"),
                    (later, earlier)))

    # ---- writes, key by key ----

    def _index_writes(self) -> None:
        for txn in sorted((t for t in self.history.transactions if t.writes),
                          key=lambda t: (t.ts if t.ts is not None else 0, t.index)):
            for key, effect in _effects(txn).items():
                writes = self.keys.setdefault(key, _KeyWrites())
                if txn.status == "ok":
                    writes.timestamps.append(_ts(txn))
                    writes.writers.append(txn)
                    writes.effects.append(effect)
                    if any(op == "w" for op, _ in effect):
                        writes.overwrites.append(len(writes.effects) - 1)
                else:
                    before = self._latest_writer_before(txn.call)
                    bound = _NO_BOUND if before is None else _ts(before)
                    writes.unknown.append((bound, txn, effect))
        for key, writes in self.keys.items():
            state: State = MISSING
            for position, effect in enumerate(writes.effects):
                if position and writes.timestamps[position] == writes.timestamps[position - 1]:
                    first, second = writes.writers[position - 1], writes.writers[position]
                    self.violations.append(Violation("same-timestamp", (
                        f"{second.describe()} and {first.describe()} both wrote {key!r} at "
                        f"timestamp {second.ts}: its versions there have no order"),
                        (second, first), key))
                state = _apply(state, effect)
                writes.states_after.append(state)

    # ---- reads ----

    def _check_reads(self, reader: Transaction) -> None:
        bound = _ts(reader) if reader.read_only else _ts(reader) - 1
        own: dict[Key, list[tuple[str, Value]]] = {}
        snapshots: dict[Key, set[State] | None] = {}
        for op, key, arg in reader.ops:
            if op != "r":
                own.setdefault(key, []).append((op, arg))
                continue
            if key not in snapshots:
                snapshots[key] = self._possible_states(key, bound)
            possible = snapshots[key]
            if possible is not None and not reader.read_only:
                possible = possible | self._tied_states(key, reader, possible)
            if possible is None:
                self.reads_unchecked += 1
                continue
            self.reads_checked += 1
            effect = tuple(own.get(key, ()))
            expected = {_apply(state, effect) for state in possible}
            if any(_same(_read_value(state), arg) for state in expected
                   if state is not _INVALID):
                continue
            self.violations.append(self._stale_read(reader, key, arg, bound, expected))

    def _tied_states(self, key: Key, reader: Transaction, possible: set[State]
                     ) -> set[State]:
        """States with the writes of other transactions committed at the reader's very
        timestamp applied: timestamps do not order the two, so either order is allowed
        (the ones of each kept in index order)."""
        writes = self.keys.get(key)
        if writes is None:
            return set()
        low = bisect.bisect_left(writes.timestamps, _ts(reader))
        high = bisect.bisect_right(writes.timestamps, _ts(reader))
        tied = [writes.effects[i] for i in range(low, high) if writes.writers[i] is not reader]
        states = set(possible)
        for effect in tied:
            states |= {_apply(state, effect) for state in states}
        return states - possible

    def _possible_states(self, key: Key, bound: int) -> set[State] | None:
        """Every state of `key` at timestamp `bound` that some outcome of the unknown
        transactions allows, or None when there are more than MAX_STATES."""
        writes = self.keys.get(key)
        if writes is None:
            return {MISSING}
        count = bisect.bisect_right(writes.timestamps, bound)
        floating = [(lower, effect) for lower, _, effect in writes.unknown if lower < bound]
        base: State = writes.states_after[count - 1] if count else MISSING
        if not floating:
            return {base}
        if self.commutative_adds and all(op == "add" for _, effect in floating
                                         for op, _ in effect):
            return _with_any_adds(base, [sum(_int(arg) for _, arg in effect)
                                         for _, effect in floating])
        # Writes at or below every unknown transaction's lower bound come before all of them,
        # and so does whatever precedes the last outright write before the read.
        settled = bisect.bisect_right(writes.timestamps, min(lower for lower, _ in floating))
        overwrite = bisect.bisect_left(writes.overwrites, count) - 1
        if overwrite >= 0:
            settled = max(settled, writes.overwrites[overwrite] + 1)
        settled = min(settled, count)
        start: State = writes.states_after[settled - 1] if settled else MISSING
        worlds: set[tuple[State, frozenset[int]]] = {(start, frozenset())}
        for position in range(settled, count + 1):
            # The gap below the next committed write (or the read's own timestamp): unknown
            # transactions whose lower bound is below it may land there.
            gap_top = writes.timestamps[position] if position < count else bound
            landed = self._land_unknown(worlds, floating, gap_top)
            if landed is None:
                return None
            worlds = landed
            if position < count:
                effect = writes.effects[position]
                worlds = {(_apply(state, effect), used) for state, used in worlds}
        return {state for state, _ in worlds}

    def _land_unknown(self, worlds: set[tuple[State, frozenset[int]]],
                      floating: list[tuple[int, Effect]], gap_top: int
                      ) -> set[tuple[State, frozenset[int]]] | None:
        landable = [number for number, (lower, _) in enumerate(floating) if lower < gap_top]
        frontier = set(worlds)
        while frontier:
            if len(worlds) > MAX_STATES:
                return None
            grown: set[tuple[State, frozenset[int]]] = set()
            for state, used in frontier:
                for number in landable:
                    if number in used:
                        continue
                    world = (_apply(state, floating[number][1]), used | {number})
                    if world not in worlds:
                        grown.add(world)
            worlds |= grown
            frontier = grown
        return worlds

    def _stale_read(self, reader: Transaction, key: Key, seen: Value, bound: int,
                    expected: set[State]) -> Violation:
        writes = self.keys.get(key)
        latest: Transaction | None = None
        if writes is not None:
            count = bisect.bisect_right(writes.timestamps, bound)
            if count:
                latest = writes.writers[count - 1]
        values = sorted(repr(_read_value(state)) for state in expected if state is not _INVALID)
        if len(values) > 5:
            values = [*values[:5], f"\u2026 ({len(values)} in all)"]
        where = (f"at or below {reader.ts}" if reader.read_only
                 else f"below its commit timestamp {reader.ts}")
        allowed = " or ".join(values) if values else "nothing (an add to a non-integer)"
        text = (f"{reader.describe()} read {key!r} = {seen!r}, but the state of {key!r} "
                f"{where} is {allowed}")
        if latest is not None:
            text += f"; its latest committed write there is by {latest.describe()}"
        source = self._writer_of(key, seen, reader)
        if source is not None and source is not latest:
            place = ("above the read's timestamp" if _ts(source) > bound
                     else "since overwritten")
            text += f"; the value read was written by {source.describe()}, {place}"
        pair = tuple(t for t in (reader, latest or source) if t is not None)
        return Violation("read", text, pair, key)

    def _writer_of(self, key: Key, value: Value, reader: Transaction) -> Transaction | None:
        writes = self.keys.get(key)
        if writes is None:
            return None
        for writer, state in zip(writes.writers, writes.states_after, strict=True):
            if writer is not reader and state is not _INVALID and _same(_read_value(state),
                                                                        value):
                return writer
        return None


def _ts(txn: Transaction) -> int:
    assert txn.ts is not None, txn
    return txn.ts


def _with_any_adds(base: State, deltas: list[int]) -> set[State] | None:
    """`base` with the sum of each subset of `deltas` added, or None past MAX_STATES."""
    if base is _INVALID:
        return {base}
    sums: set[int] = set()  # of the non-empty subsets
    for delta in deltas:
        sums |= {delta} | {total + delta for total in sums}
        if len(sums) > MAX_STATES:
            return None
    start = 0 if base is MISSING or base is None else base
    if not isinstance(start, int) or isinstance(start, bool):
        return {base}  # an add to it is impossible: only "none of them" remains
    return {base} | {start + total for total in sums}


def _int(value: Value) -> int:
    assert isinstance(value, int), value
    return value


def _ret(txn: Transaction) -> int:
    assert txn.ret is not None, txn
    return txn.ret


def _effects(txn: Transaction) -> dict[Key, Effect]:
    effects: dict[Key, list[tuple[str, Value]]] = {}
    for op, key, arg in txn.ops:
        if op != "r":
            effects.setdefault(key, []).append((op, arg))
    return {key: tuple(ops) for key, ops in effects.items()}


def _apply(state: State, effect: Effect) -> State:
    for op, arg in effect:
        if op == "w":
            state = arg
            continue
        if state is _INVALID:
            continue
        current = 0 if state is MISSING or state is None else state
        if not isinstance(current, int) or isinstance(current, bool):
            return _INVALID
        assert isinstance(arg, int)
        state = current + arg
    return state


def _same(state: Value, seen: Value) -> bool:
    """Equal as JSON values: `true` is not `1`."""
    return state == seen and isinstance(state, bool) == isinstance(seen, bool)


def _read_value(state: State) -> Value:
    assert not isinstance(state, _Invalid)
    return None if isinstance(state, _Missing) else state
