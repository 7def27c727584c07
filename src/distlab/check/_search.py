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
* model states are interned to small ints (values that Python finds equal but the
  models do not, such as 1 and True, stay apart), and each (operation, state)
  transition is computed once; on a register, puts and deletes go to their value's
  state and gets stay where they are accepted without asking the model;
* the memo is one set of linearized-bitsets per state.

A linearization the search finds is replayed through the model and checked against real
time before the verdict is given.

Pruning rules that keep every verdict (each is checked against brute force in the
tests):

* indeterminate operations may be left out, so the search succeeds as soon as every
  operation that completed is linearized;
* two operations with the same function, argument and result have the same effect in
  any state. If one was invoked no later and returned no later than the other, any
  linearization that puts the later one first stays valid with the two swapped, so the
  search only tries them in that order;
* a read-only candidate (a get, a cas that found another value) that the current state
  satisfies is linearized at once, with no alternative tried: moving it to the front
  of any valid continuation keeps the continuation valid, since it changes nothing and
  real time lets it come next.

On one key's register (`register`), the search also knows which states an operation
tells apart (its `Footprint`). Without the rules below, many concurrent writers of one
key made it try every order of writes that no read could tell apart:

* gets that the current state does not satisfy are not tried;
* a state that no remaining operation inspects (no get reads it, no cas expects it) is
  unobserved, and every unobserved state behaves the same in any continuation: all are
  remembered as one, so a configuration reached again with another unobserved state is
  not explored again. While appends remain, this holds for strings that no remaining
  operation inspects a string starting with (whatever is appended to them stays
  unobserved), and other states are never unobserved;
* in an unobserved state, a put or delete of a value that no remaining operation
  inspects is linearized at once, unless an operation remains that acts on unobserved
  states differently from observed ones (a cas that found another value, an
  indeterminate cas, an append): in any valid continuation such a write is followed by
  another write or by nothing, so it can move to the front;
* leaving a state that a remaining operation requires (a get of it, a cas from it)
  when no remaining operation can write it again (puts of it, cas to it, appends of a
  suffix of it) is never tried: that operation could never be linearized;
* a completed operation that requires a value nothing writes (and that is not the
  initial state) can never be linearized: the search stops with a violation once that
  operation is the next to return.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from distlab.check._history import Operation, Value
from distlab.check._models import Footprint, identity

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
# Candidate moves spent looking for the deepest prefix of a history known to break.
_DIAGNOSIS_STEPS = 20_000
# What a register value that no operation mentions is read, required, inspected and
# written by.
_NO_FACTS = (0, 0, 0, 0)
# Targets of moves that are not a state id: a get (accepted in the states it reads, and
# staying there), or any other operation (the model says).
_READS = -2
_ASK_MODEL = -3
# The ids of the unobserved state and of the unobserved string.
_UNOBSERVED = 0
_UNOBSERVED_STRING = 1
# The transitions of an operation the model is never asked about: none, ever.
_NO_MOVES: dict[int, int] = {}

Transition = Callable[[Operation, Value], tuple[bool, Value]]
Footprints = Callable[[Operation], Footprint]


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
                 transition: Transition, footprint: Footprints, *, register: bool = True
                 ) -> None:
        """`transition` is the model; `footprint` says how each operation depends on a
        register's state; `register` says the state is that one register (it is not when
        one partition holds every key, and its state is a tuple of registers)."""
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
        self._order_masks, self._order_shifts = self._ordering_masks(register)
        self._gets = sum(1 << position for position, op in enumerate(self.operations)
                         if op.f == "get" and op.status == "ok")
        self._register = register
        footprints = [footprint(op) for op in self.operations]
        self._register_tables(footprints)
        self._states: list[Value] = []
        self._state_ids: dict[object, int] = {}
        # Per interned state: the completed gets it satisfies and those it does not, the
        # completed operations that require it, those that may write it.
        self._readers: list[int] = []
        self._others_read: list[int] = []
        self._requirers: list[int] = []
        self._writers: list[int] = []
        # Per interned state: the operations whose presence keeps it observed, and the
        # unobserved state it stands for when none is left.
        self._observers: list[int] = []
        self._unobserved_of: list[int] = []
        # Per interned state: the configurations explored (their linearized sets).
        self._seen: list[set[int]] = []
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
        if register:
            unobserved_ids = (self._intern(self._unobserved),
                              self._intern(self._unobserved_string))
            assert unobserved_ids == (_UNOBSERVED, _UNOBSERVED_STRING), unobserved_ids
        initial_id = self._intern(initial)
        # How the search moves each operation without asking the model: to the state a
        # blind write leaves, or (a read-only get) staying where it is accepted.
        self._targets = [_ASK_MODEL] * count
        if register:
            for position, fp in enumerate(footprints):
                if fp.blind:
                    self._targets[position] = self._intern(fp.written[0])
                elif self._gets >> position & 1:
                    self._targets[position] = _READS
        # Transitions the model was asked for, per operation and state.
        self._moves: list[dict[int, int]] = [{} if target == _ASK_MODEL else _NO_MOVES
                                             for target in self._targets]
        # A frame: [state id, untried completed candidates shifted right by `first`,
        # untried indeterminate candidates, `first`, operation taken to get here]; the
        # linearized set of the top frame is kept apart, as one int.
        self._stack: list[list[int]] = []
        self._linearized = 0
        self._best_path: list[int] = []
        self._best_depth = 1
        self._initial_id = initial_id
        # Whether moves that strand an operation are cut off (not while looking for the
        # deepest prefix of a history known to break).
        self._cut_stranding = True
        if not completed:
            self._finish(True, [])
        elif self._hopeless >> len(indeterminate) & 1:
            self._finish(False, [])
        else:
            self._start()

    def _start(self) -> None:
        """Push the initial configuration, with nothing linearized."""
        first = self._optional_count
        state_id = self._initial_id
        if self._register and not self._observers[state_id]:
            state_id = self._unobserved_of[state_id]
        untried, untried_info = self._narrow(
            state_id, 0, first, self._near[first], self._early_masks[self._early[first]])
        self._stack = [[state_id, untried, untried_info, first, -1]]
        self._linearized = 0
        self._best_path = []
        self._best_depth = 1

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
        self._readers = self._others_read = self._requirers = self._writers = []
        self._observers = self._unobserved_of = []
        self.entries = self.transitions = self._state_bytes = self._table_bytes = 0

    def _candidate_tables(self, optional: int) -> tuple[list[int], list[int], list[int]]:
        """What may come next when completed operation e is the first open one to return:
        the operations invoked no later than e returned. Completed ones among them
        return at or after e, so they are kept as a small mask relative to e (`near`);
        indeterminate ones are a prefix of the low bits (`early` counts them). Both stay
        proportional to the overlap of operations, not to the length of the history."""
        count = len(self.operations)
        calls = [op.call for op in self.operations]
        returns = [_returned(op) for op in self.operations[optional:]]
        by_call = sorted(range(optional, count), key=calls.__getitem__)
        call_order = [calls[j] for j in by_call]
        near = [0] * count
        # The completed operations from e on that were invoked by the time e returned,
        # relative to e; as e moves on, that time only grows.
        window = 0
        added = 0
        total = len(by_call)
        for e, returned in enumerate(returns, optional):
            window >>= 1
            while added < total and call_order[added] <= returned:
                window |= 1 << (by_call[added] - e)
                added += 1
            near[e] = window
        info_calls = calls[:optional]
        early = [0] * optional + [bisect_right(info_calls, returned) for returned in returns]
        early_masks = [(1 << k) - 1 for k in range(optional + 1)]
        return near, early, early_masks

    def _candidates_after(self, linearized: int) -> int:
        """The operations that may come next after `linearized` (not all completed)."""
        open_first = linearized | self._optional
        first = (~open_first & (open_first + 1)).bit_length() - 1
        return ((self._near[first] << first) | self._early_masks[self._early[first]]
                ) & ~linearized

    def _ordering_masks(self, register: bool) -> tuple[list[int], list[int]]:
        """For each operation, the same-effect operations that must be linearized first,
        as a mask shifted right by the paired shift. Only operations still open when
        the later one is invoked are listed: real time already orders the others.
        A register's search never chooses between gets (one is taken at once, or none
        is tried), so there they are left out."""
        # Operations of one class: the same function of the same key (when one partition
        # holds every key), with the same argument and result.
        classes: dict[tuple[str, object, object, object, str], list[int]] = {}
        key: tuple[str, object, object, object, str]
        for position, op in enumerate(self.operations):
            f = op.f
            if f == "get":
                if register:
                    continue
                key = (f, op.key, None, identity(op.result), "any")
            elif f == "cas":
                key = (f, op.key, identity(op.value), identity(op.result), op.status)
            else:
                key = (f, op.key, identity(op.value), None, "any")
            members = classes.get(key)
            if members is None:
                classes[key] = [position]
            else:
                members.append(position)
        infinity = float("inf")
        masks = [0] * len(self.operations)
        shifts = [0] * len(self.operations)
        for members in classes.values():
            if len(members) == 1:
                continue
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

    def _register_tables(self, footprints: list[Footprint]) -> None:
        """Masks of operations by the values they read, require, inspect and write."""
        # Per value: [gets that read it, completed operations that require it,
        # operations that inspect it, operations that may write it].
        facts: dict[object, list[int]] = {}

        def entry_of(value: Value) -> list[int]:
            key = identity(value)
            entry = facts.get(key)
            if entry is None:
                entry = facts[key] = [0, 0, 0, 0]
            return entry

        appends = volatile = blind = read_only = 0
        # Appends by the length and the value of what they append.
        suffixes: dict[int, dict[str, int]] = {}
        for position, (op, fp) in enumerate(zip(self.operations, footprints, strict=True)):
            bit = 1 << position
            (inspected, inspects_all, required, written, suffix, is_blind, is_read_only,
             is_volatile) = fp
            for value in required:
                entry = entry_of(value)
                if op.status == "ok":
                    entry[1] |= bit
                    if is_read_only:
                        entry[0] |= bit
            for value in inspected:
                entry_of(value)[2] |= bit
            for value in written:
                entry_of(value)[3] |= bit
            if inspects_all:
                appends |= bit
                for value in suffix:
                    by_value = suffixes.setdefault(len(value), {})
                    by_value[value] = by_value.get(value, 0) | bit
            if is_volatile:
                volatile |= bit
            if is_blind:
                blind |= bit
            if is_read_only:
                read_only |= bit
        self._appends, self._volatile, self._blind = appends, volatile, blind
        self._read_only, self._suffixes = read_only, suffixes
        self._facts_of = {key: (entry[0], entry[1], entry[2], entry[3])
                          for key, entry in facts.items()}
        self._written_inspectors = [
            facts[identity(fp.written[0])][2] if fp.blind else 0 for fp in footprints]
        # Inspected strings in order, so that those starting with a given string are a
        # run of them.
        strings = sorted((key, entry[2]) for key, entry in facts.items()
                         if appends and isinstance(key, str) and entry[2])
        self._inspected_strings = [value for value, _ in strings]
        self._inspected_string_masks = [mask for _, mask in strings]
        # A value that no operation inspects stands for every unobserved state; a string
        # that no inspected string starts with, for every unobserved string.
        def inspectors_of(value: Value) -> int:
            entry = facts.get(identity(value))
            return 0 if entry is None else entry[2]

        unobserved: Value = ("unobserved",)
        while inspectors_of(unobserved):
            unobserved = (unobserved,)
        self._unobserved = unobserved
        unobserved_string = "\x00unobserved"
        while inspectors_of(unobserved_string) or self._string_observers(unobserved_string):
            unobserved_string = "\x00" + unobserved_string
        self._unobserved_string = unobserved_string
        # Where every value written is a string or None (or a tuple of them), states are
        # their own interning key.
        self._plain = not self._register and _plain(self._initial) and all(
            _plain(value) for fp in footprints for value in fp.written)
        # Completed operations that require a value that nothing writes (a compound
        # state is never such a value, so this is for a register only).
        self._hopeless = 0
        initial = identity(self._initial)
        for key, (_, requirers, _, writers) in self._facts_of.items():
            if (self._register and requirers and not writers and key != initial
                    and not (isinstance(key, str) and self._appending(key))):
                self._hopeless |= requirers

    def _string_observers(self, value: str) -> int:
        """The operations that inspect a string starting with `value`."""
        observers = 0
        strings = self._inspected_strings
        index = bisect_left(strings, value)
        while index < len(strings) and strings[index].startswith(value):
            observers |= self._inspected_string_masks[index]
            index += 1
        return observers

    def _appending(self, value: str) -> int:
        """The appends that may leave `value`: those of a suffix of it."""
        appends = 0
        for length, by_value in self._suffixes.items():
            if length <= len(value):
                appends |= by_value.get(value[len(value) - length:], 0)
        return appends

    def _intern(self, state: Value) -> int:
        key = state if self._plain else identity(state)
        state_id = self._state_ids.get(key)
        if state_id is None:
            state_id = len(self._states)
            self._state_ids[key] = state_id
            self._states.append(state)
            self._seen.append(set())
            self._state_bytes += _STATE_BYTES + (
                _value_bytes(state) if isinstance(state, tuple) else sys.getsizeof(state))
            if self._register:
                readers, requirers, inspectors, writers = self._facts_of.get(
                    identity(state), _NO_FACTS)
                self._readers.append(readers)
                self._others_read.append(self._gets & ~readers)
                self._requirers.append(requirers)
                if isinstance(state, str):
                    # What appends make of a string only matters to an operation that
                    # inspects a string starting with it.
                    self._observers.append(self._string_observers(state) if self._appends
                                           else inspectors)
                    self._unobserved_of.append(_UNOBSERVED_STRING)
                    if self._suffixes:
                        writers |= self._appending(state)
                else:
                    # An append tells any other state from every other.
                    self._observers.append(inspectors | self._appends)
                    self._unobserved_of.append(_UNOBSERVED)
                self._writers.append(writers)
        return state_id

    def _narrow(self, state_id: int, linearized: int, first: int, untried: int,
                untried_info: int) -> tuple[int, int]:
        """The candidates of a configuration worth trying, as a frame holds them: one, if
        a rule says it may come next at once, else all of them but (on a register) the
        gets that the state does not satisfy."""
        if not self._register:
            # The state is compound: ask the model which read-only candidates it allows.
            observers = untried & (self._read_only >> first)
            while observers:
                bit = observers & -observers
                observers ^= bit
                position = first + bit.bit_length() - 1
                if (self._first_allowed(bit, first, linearized)
                        and self._cached_move(position, state_id) >= 0):
                    return bit, 0
            return untried, untried_info
        untried &= ~(self._others_read[state_id] >> first)
        forced = untried & (self._readers[state_id] >> first)
        if forced:
            # The ordering rule leaves a register's gets alone.
            return forced & -forced, 0
        if state_id <= _UNOBSERVED_STRING and not self._volatile & ~linearized:
            writes = untried & (self._blind >> first)
            chosen = self._first_allowed(writes, first, linearized, unseen_write=True)
            if chosen:
                return chosen, 0
            chosen = self._first_allowed(untried_info & self._blind, 0, linearized,
                                         unseen_write=True)
            if chosen:
                return 0, chosen
        return untried, untried_info

    def _first_allowed(self, candidates: int, shift: int, linearized: int, *,
                       unseen_write: bool = False) -> int:
        """The lowest bit of `candidates` (positions shifted right by `shift`) that the
        ordering rule lets come next and, with `unseen_write`, that writes a value no
        operation outside `linearized` inspects; 0 if none."""
        while candidates:
            bit = candidates & -candidates
            candidates ^= bit
            position = shift + bit.bit_length() - 1
            before = self._order_masks[position]
            if before and (before << self._order_shifts[position]) & ~linearized:
                continue
            if unseen_write and self._written_inspectors[position] & ~linearized:
                continue
            return bit
        return 0

    def _move(self, position: int, state_id: int) -> int:
        ok, after = self._transition(self.operations[position], self._states[state_id])
        self.transitions += 1
        return self._intern(after) if ok else -1

    def _cached_move(self, position: int, state_id: int) -> int:
        after = self._moves[position].get(state_id)
        if after is None:
            after = self._moves[position][state_id] = self._move(position, state_id)
        return after

    def run(self, max_steps: int) -> Outcome | None:
        """Try up to `max_steps` candidate moves; the outcome once the search is over."""
        if self.outcome is not None:
            return self.outcome
        ended = self._search(max_steps)
        if ended is None:
            return None
        linearizable, path = ended
        if not linearizable:
            linearizable, path = self._deepest_prefix(path)
        self._finish(linearizable, path)
        return self.outcome

    def _deepest_prefix(self, path: list[int]) -> tuple[bool, list[int]]:
        """For a history known to break, a prefix to report: the deepest found by a
        search that does not cut off stranding moves (the rules cut off moves that
        cannot lead anywhere, and the prefixes they would make), within
        _DIAGNOSIS_STEPS, then extended while any candidate is accepted, so that the
        report ends where nothing can come next, as an exhaustive search would. It
        finds a complete linearization only if a rule was wrong."""
        steps = self.steps
        self._cut_stranding = False
        for seen in self._seen:
            seen.clear()
        self._start()
        ended = self._search(_DIAGNOSIS_STEPS)
        self.steps = steps
        if ended is not None and ended[0]:
            return ended
        found = [path, self._best_path, [frame[4] for frame in self._stack[1:]]]
        if ended is not None:
            found.append(ended[1])
        deepest = max(found, key=len)
        return self._extend(deepest), deepest

    def _search(self, max_steps: int) -> tuple[bool, list[int]] | None:
        """Run the search for up to `max_steps` candidate moves: None if it is not over,
        else whether the history is linearizable, with a linearization, or with the
        deepest prefix found (for a violation)."""
        stack = self._stack
        seen = self._seen
        moves = self._moves
        order_masks = self._order_masks
        order_shifts = self._order_shifts
        optional = self._optional
        everything = self._all
        compact = self._compact
        optional_count = self._optional_count
        first_bits = self._first_bits
        best_depth = self._best_depth
        linearized = self._linearized
        register = self._register
        requirers = self._requirers
        writers = self._writers
        observers = self._observers
        unobserved_of = self._unobserved_of
        hopeless = self._hopeless
        narrow = self._narrow
        cut_stranding = self._cut_stranding
        targets = self._targets
        readers = self._readers
        near = self._near
        early = self._early
        early_masks = self._early_masks
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
            after = targets[position]
            if after == _READS:
                after = state_id if readers[state_id] >> position & 1 else -1
            elif after == _ASK_MODEL:
                after = moves[position].get(state_id, _ASK_MODEL)
                if after == _ASK_MODEL:
                    after = moves[position][state_id] = self._move(position, state_id)
            if after < 0:
                continue
            extended = linearized | low
            open_first = extended | optional
            if open_first == everything:
                self.steps += steps
                return True, [f[4] for f in stack[1:]] + [position]
            if register:
                if (cut_stranding and after != state_id and requirers[state_id] & ~extended
                        and not writers[state_id] & ~extended):
                    # A doomed move is still a valid prefix: a violation's report shows
                    # the deepest one, where the stranded operation is the one stuck.
                    if len(stack) >= best_depth:
                        best_depth = len(stack) + 1
                        self._best_path = [f[4] for f in stack[1:]] + [position]
                    continue
                if not observers[after] & ~extended:
                    # No remaining operation tells this state from any other unobserved
                    # one (of its kind).
                    after = unobserved_of[after]
            first = (~open_first & (open_first + 1)).bit_length() - 1
            if hopeless and hopeless >> first & 1:
                self.steps += steps
                return False, [f[4] for f in stack[1:]] + [position]
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
            untried = near[first] & ~from_first
            untried_info = early_masks[early[first]] & ~extended
            untried, untried_info = narrow(after, extended, first, untried, untried_info)
            stack.append([after, untried, untried_info, first, position])
            if len(stack) > best_depth:
                best_depth = len(stack)
        self.steps += steps
        self._linearized = linearized
        return False, self._best_path

    def _finish(self, linearizable: bool, path: list[int]) -> None:
        """Record the outcome, after confirming the (partial) linearization with the
        model and with real time: no operation comes after one that was invoked after
        it returned."""
        states: list[Value] = []
        state = self._initial
        linearized = 0
        latest_call = -sys.maxsize
        for position in path:
            operation = self.operations[position]
            ok, state = self._transition(operation, state)
            assert ok, "a recorded linearization must replay"
            assert operation.ret is None or operation.ret >= latest_call, \
                "a recorded linearization must respect real time"
            assert not linearized >> position & 1, "an operation is linearized once"
            latest_call = max(latest_call, operation.call)
            states.append(state)
            linearized |= 1 << position
        assert not linearizable or linearized | self._optional == self._all, \
            "a linearization holds every completed operation"
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

    def _extend(self, path: list[int]) -> bool:
        """Extend the prefix `path` in place, one accepted candidate at a time, earliest
        return first among: the read-only completed ones, then the other completed ones
        that strand no operation (leave a state that a remaining one requires and that
        nothing left can write again), then the rest; whether that linearized every
        completed operation (never, unless a rule was wrong)."""
        state = self._initial
        linearized = 0
        for position in path:
            state = self._transition(self.operations[position], state)[1]
            linearized |= 1 << position
        while linearized | self._optional != self._all:
            candidates = self._candidates_after(linearized)
            completed = candidates & ~self._optional
            chosen = self._accepted(completed & self._read_only, state, linearized, False)
            if chosen is None:
                chosen = self._accepted(completed & ~self._read_only, state, linearized,
                                        self._register)
            if chosen is None:
                chosen = self._accepted(candidates & ~self._read_only, state, linearized,
                                        False)
            if chosen is None:
                return False
            position, state = chosen
            path.append(position)
            linearized |= 1 << position
        return True

    def _accepted(self, candidates: int, state: Value, linearized: int, unstranding: bool
                  ) -> tuple[int, Value] | None:
        """The earliest-returning of `candidates` that the model accepts in `state`
        (and, with `unstranding`, that strands nothing), and the state after it."""
        while candidates:
            low = candidates & -candidates
            candidates ^= low
            position = low.bit_length() - 1
            ok, after = self._transition(self.operations[position], state)
            if not ok:
                continue
            if unstranding:
                before_id, after_id = self._intern(state), self._intern(after)
                left = ~(linearized | low)
                if (before_id != after_id and self._requirers[before_id] & left
                        and not self._writers[before_id] & left):
                    continue
            return position, after
        return None


def _returned(operation: Operation) -> int:
    assert operation.ret is not None, "only completed operations have a return"
    return operation.ret


def _plain(value: Value) -> bool:
    if isinstance(value, tuple):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, str)


def _value_bytes(value: Value) -> int:
    if isinstance(value, tuple):
        return sys.getsizeof(value) + sum(_value_bytes(item) for item in value)
    return sys.getsizeof(value)
