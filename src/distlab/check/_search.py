"""The Wing-Gong-Lowe search for one partition, resumable so partitions can take turns.

The search extends a sequential order (a partial linearization) one operation at a time.
An operation may come next only if it was invoked before every not-yet-linearized
operation returned, and only if the model accepts it. A configuration is the set of
linearized operations plus the model state; configurations already explored are
remembered (Lowe's memoization, as Porcupine does) so each is expanded once.

Representation, chosen for CPython:

* indeterminate operations (no return) take the low bits, then the others by return
  time, so with the indeterminate bits set, the lowest zero bit of the set of
  linearized operations (a Python int) is the operation that must be linearized
  soonest; the candidates are the operations invoked before that one returned, from
  precomputed tables, minus those already linearized;
* model states are interned to small ints, and each (operation, state) transition is
  computed once;
* the memo is one set of linearized-bitsets per state.

Two pruning rules that keep every verdict:

* indeterminate operations may be left out, so the search succeeds as soon as every
  operation that completed is linearized;
* two operations with the same function, argument and result have the same effect in
  any state. If one was invoked no later and returned no later than the other, any
  linearization that puts the later one first stays valid with the two swapped, so the
  search only tries them in that order.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from distlab.check._history import Operation, Value

# How far back, among operations with the same effect, the ordering rule looks. Any
# subset of such pairs keeps the search complete; this bound keeps setup linear.
_ORDERING_WINDOW = 64
# Approximate bytes of bookkeeping per remembered configuration, per interned state and
# per cached transition, beyond the size of the ints and values themselves.
_SET_SLOT_BYTES = 40
_STATE_BYTES = 400
_TRANSITION_BYTES = 120
_INT_HEADER_BYTES = 28
_FRAME_BYTES = 250
# Partitions with more operations than this remember configurations compactly.
_COMPACT_ABOVE = 256

Transition = Callable[[Operation, Value], tuple[bool, Value]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a finished search ended.

    `linearization` is a complete linearization when `linearizable`, else the longest
    partial one found. `stuck` holds, for a violation, the operations that could not
    come next after that prefix (the first of them returned first), and `state` the
    model state after the prefix.
    """

    linearizable: bool
    linearization: tuple[Operation, ...]
    states: tuple[Value, ...]
    stuck: tuple[Operation, ...]


class PartitionSearch:
    """One partition's search; `run(steps)` advances it by at most `steps` attempts."""

    def __init__(self, operations: Sequence[Operation], initial: Value,
                 transition: Transition) -> None:
        indeterminate = sorted((op for op in operations if op.status != "ok"),
                               key=lambda op: (op.call, op.index))
        completed = sorted((op for op in operations if op.status == "ok"),
                           key=lambda op: (op.ret, op.call, op.index))
        # Indeterminate operations take the low bits, in invoke order; completed ones
        # follow in return order.
        self.operations: list[Operation] = indeterminate + completed
        self._transition = transition
        self._initial = initial
        count = len(self.operations)
        self._optional = (1 << len(indeterminate)) - 1
        self._all = (1 << count) - 1
        self._near, self._early, self._early_masks = self._candidate_tables(len(indeterminate))
        self._order_masks, self._order_shifts = self._ordering_masks()
        self._states: list[Value] = []
        self._state_ids: dict[Value, int] = {}
        self._seen: list[set[int]] = []
        self._moves: list[dict[int, int]] = [{} for _ in range(count)]
        # Long histories remember configurations in a compact form (see run); short
        # ones are faster remembering the bitset itself.
        self._compact = count > _COMPACT_ABOVE
        self._optional_count = len(indeterminate)
        self._first_bits = max(count, 1).bit_length()
        self._entry_bytes = sys.getsizeof(1 << max(count, 1)) + _SET_SLOT_BYTES
        self._memo_bits = 0
        self._state_bytes = 0
        self._table_bytes = sum(map(sys.getsizeof, self._near)) + sum(
            map(sys.getsizeof, self._early_masks)) + sum(map(sys.getsizeof, self._order_masks))
        self.entries = 0
        self.transitions = 0
        self.steps = 0
        self.outcome: Outcome | None = None
        initial_id = self._intern(initial)
        # A frame: [state id, untried completed candidates shifted right by `first`,
        # untried indeterminate candidates, `first`, operation taken to get here]; the
        # linearized set of the top frame is kept apart, as one int.
        self._stack: list[list[int]] = []
        self._linearized = 0
        self._best_path: list[int] = []
        self._best_depth = 1
        if not completed:
            self._finish(True, [])
        else:
            first = len(indeterminate)
            self._stack.append([initial_id, self._near[first],
                                self._early_masks[self._early[first]], first, -1])

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def memory_estimate(self) -> int:
        """Bytes held by the memo, the interned states, the transition cache and the
        candidate tables."""
        if self._compact:
            # An int takes 4 bytes per 30 bits beyond its header.
            memo = self.entries * (_INT_HEADER_BYTES + _SET_SLOT_BYTES) + self._memo_bits // 7
        else:
            memo = self.entries * self._entry_bytes
        return (memo + self._state_bytes + self._table_bytes
                + self.transitions * _TRANSITION_BYTES + len(self._stack) * _FRAME_BYTES)

    def release(self) -> None:
        """Drop the memo once the verdict is known."""
        self._seen = []
        self._moves = []
        self._stack = []
        self.entries = self.transitions = self._state_bytes = self._table_bytes = 0

    def _candidate_tables(self, optional: int) -> tuple[list[int], list[int], list[int]]:
        """What may come next when completed operation e is the first open one to return:
        the operations invoked no later than e returned. Completed ones among them
        return at or after e, so they are kept as a small mask relative to e (`near`);
        indeterminate ones are a prefix of the low bits (`early` counts them). Both stay
        proportional to the overlap of operations, not to the length of the history."""
        count = len(self.operations)
        returns = [_returned(op) for op in self.operations[optional:]]
        near = [0] * count
        for j in range(optional, count):
            first = optional + bisect_left(returns, self.operations[j].call)
            for e in range(first, j + 1):
                near[e] |= 1 << (j - e)
        info_calls = [op.call for op in self.operations[:optional]]
        early = [0] * count
        for e in range(optional, count):
            early[e] = bisect_right(info_calls, _returned(self.operations[e]))
        early_masks = [(1 << k) - 1 for k in range(optional + 1)]
        return near, early, early_masks

    def _candidates_after(self, linearized: int) -> int:
        """The operations that may come next after `linearized` (not all completed)."""
        open_first = linearized | self._optional
        first = (~open_first & (open_first + 1)).bit_length() - 1
        return ((self._near[first] << first) | self._early_masks[self._early[first]]
                ) & ~linearized

    def _ordering_masks(self) -> tuple[list[int], list[int]]:
        """For each operation, the same-effect operations that must be linearized first,
        as a mask shifted right by the paired shift. Only operations still open when
        the later one is invoked are listed: real time already orders the others."""
        classes: dict[tuple[str, Value, Value, str], list[int]] = {}
        for position, op in enumerate(self.operations):
            result = op.result if op.f in ("get", "cas") else None
            kind = op.status if op.f == "cas" else "any"
            classes.setdefault((op.f, op.value, result, kind), []).append(position)
        infinity = float("inf")
        masks = [0] * len(self.operations)
        shifts = [0] * len(self.operations)
        for members in classes.values():
            members.sort(key=lambda i: (self.operations[i].call, i))
            for rank, later in enumerate(members):
                later_op = self.operations[later]
                later_ret = infinity if later_op.ret is None else later_op.ret
                before = []
                for earlier in members[max(0, rank - _ORDERING_WINDOW):rank]:
                    earlier_op = self.operations[earlier]
                    earlier_ret = infinity if earlier_op.ret is None else earlier_op.ret
                    if earlier_ret < later_op.call:
                        continue
                    if earlier_ret < later_ret or (
                            earlier_ret == later_ret
                            and (earlier_op.call, earlier) < (later_op.call, later)):
                        before.append(earlier)
                if before:
                    shifts[later] = low = min(before)
                    masks[later] = sum(1 << (earlier - low) for earlier in before)
        return masks, shifts

    def _intern(self, state: Value) -> int:
        state_id = self._state_ids.get(state)
        if state_id is None:
            state_id = len(self._states)
            self._state_ids[state] = state_id
            self._states.append(state)
            self._seen.append(set())
            self._state_bytes += _STATE_BYTES + _value_bytes(state)
        return state_id

    def _move(self, position: int, state_id: int) -> int:
        ok, after = self._transition(self.operations[position], self._states[state_id])
        self.transitions += 1
        return self._intern(after) if ok else -1

    def run(self, max_steps: int) -> Outcome | None:
        """Try up to `max_steps` candidate moves; the outcome once the search is over."""
        if self.outcome is not None:
            return self.outcome
        stack = self._stack
        seen = self._seen
        moves = self._moves
        near = self._near
        early = self._early
        early_masks = self._early_masks
        order_masks = self._order_masks
        order_shifts = self._order_shifts
        optional = self._optional
        everything = self._all
        compact = self._compact
        optional_count = self._optional_count
        first_bits = self._first_bits
        best_depth = self._best_depth
        linearized = self._linearized
        steps = 0
        while stack:
            if steps >= max_steps:
                self.steps += steps
                self._best_depth = best_depth
                self._linearized = linearized
                return None
            frame = stack[-1]
            untried_completed = frame[1]
            untried_indeterminate = frame[2]
            if untried_completed:
                # Completed operations first: an indeterminate one is better left for
                # later.
                low = untried_completed & -untried_completed
                frame[1] = untried_completed ^ low
                position = frame[3] + low.bit_length() - 1
                low <<= frame[3]
            elif untried_indeterminate:
                low = untried_indeterminate & -untried_indeterminate
                frame[2] = untried_indeterminate ^ low
                position = low.bit_length() - 1
            else:
                # Copy the deepest prefix only when leaving it: a search that goes
                # straight down never pays for copies.
                if len(stack) == best_depth and len(self._best_path) < best_depth - 1:
                    self._best_path = [f[4] for f in stack[1:]]
                stack.pop()
                if frame[4] >= 0:
                    linearized ^= 1 << frame[4]
                continue
            steps += 1
            before = order_masks[position]
            if before and (before << order_shifts[position]) & ~linearized:
                continue
            state_id = frame[0]
            after = moves[position].get(state_id)
            if after is None:
                after = self._move(position, state_id)
                moves[position][state_id] = after
            if after < 0:
                continue
            extended = linearized | low
            open_first = extended | optional
            if open_first == everything:
                self.steps += steps
                self._finish(True, [f[4] for f in stack[1:]] + [position])
                return self.outcome
            first = (~open_first & (open_first + 1)).bit_length() - 1
            from_first = extended >> first
            if compact:
                # Every completed operation below `first` is linearized, so the bits
                # from `first` up, the indeterminate bits and `first` say it all.
                remembered = ((((from_first << optional_count) | (extended & optional))
                               << first_bits) | first)
            else:
                remembered = extended
            memo = seen[after]
            if remembered in memo:
                continue
            memo.add(remembered)
            self.entries += 1
            if compact:
                self._memo_bits += remembered.bit_length()
            linearized = extended
            # A frame keeps only small ints: candidates relative to `first`, so that a
            # deep stack of a long history stays small.
            stack.append([after, near[first] & ~from_first,
                          early_masks[early[first]] & ~extended, first, position])
            if len(stack) > best_depth:
                best_depth = len(stack)
        self.steps += steps
        self._linearized = linearized
        self._finish(False, self._best_path)
        return self.outcome

    def _finish(self, linearizable: bool, path: list[int]) -> None:
        states: list[Value] = []
        state = self._initial
        linearized = 0
        for position in path:
            ok, state = self._transition(self.operations[position], state)
            assert ok, "a recorded linearization must replay"
            states.append(state)
            linearized |= 1 << position
        stuck: tuple[Operation, ...] = ()
        if not linearizable:
            open_mask = self._candidates_after(linearized)
            stuck = tuple(self.operations[i] for i in range(len(self.operations))
                          if open_mask >> i & 1)
        self.outcome = Outcome(
            linearizable=linearizable,
            linearization=tuple(self.operations[i] for i in path),
            states=tuple(states), stuck=stuck)
        self.release()


def _returned(operation: Operation) -> int:
    assert operation.ret is not None, "only completed operations have a return"
    return operation.ret


def _value_bytes(value: Value) -> int:
    if isinstance(value, tuple):
        return sys.getsizeof(value) + sum(_value_bytes(item) for item in value)
    return sys.getsizeof(value)
