"""Histories of one contended register, linearizable by construction.

Many processes write and read one key at once. Each operation takes effect at a moment
drawn inside its own interval, and the register is simulated in the order of those
moments, so every recorded history is linearizable (the moments are a linearization).
Corrupting one read afterwards gives a history that is provably not.

The checker's benchmark and its tests use these; the events are distlab's own history
format (DESIGN §9), so any checker that reads that format can be given the same input.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

KEY = "k"


@dataclass(frozen=True, slots=True)
class SimulatedOperation:
    process: int
    f: str  # "put" or "get"
    value: str | None  # the value put
    result: str | None  # the value a get read
    call: int
    ret: int
    moment: int  # when it took effect, call <= moment <= ret


def contended_register(seed: int, operations: int, processes: int = 24,
                       write_share: float = 0.5) -> list[SimulatedOperation]:
    """`operations` puts and gets by `processes` processes on one key, in invoke order.

    Each process runs one operation after another, with a pause of 1 to 99 time units
    before each, and an operation lasts 100 to 1,999 units, so that most of the
    processes are in the middle of an operation at any moment. Each put is of a value of
    its own; `write_share` of the operations are puts.
    """
    rng = random.Random(seed)
    busy_until = [rng.randrange(0, 1_000) for _ in range(processes)]
    planned: list[tuple[int, int, int, int, str]] = []
    for _ in range(operations):
        process = min(range(processes), key=lambda p: (busy_until[p], p))
        call = busy_until[process] + rng.randrange(1, 100)
        ret = call + rng.randrange(100, 2_000)
        moment = rng.randrange(call, ret + 1)
        f = "put" if rng.random() < write_share else "get"
        planned.append((moment, call, ret, process, f))
        busy_until[process] = ret
    current: str | None = None
    done: list[SimulatedOperation] = []
    for written, (moment, call, ret, process, f) in enumerate(sorted(planned)):
        if f == "put":
            current = f"v{written}"
            done.append(SimulatedOperation(process, "put", current, None, call, ret, moment))
        else:
            done.append(SimulatedOperation(process, "get", None, current, call, ret, moment))
    return sorted(done, key=lambda op: (op.call, op.process))


def stale_read(operations: list[SimulatedOperation], seed: int) -> list[SimulatedOperation]:
    """The same operations with one read made impossible: it returns a value that another
    completed put overwrote before the read was invoked. Real time alone orders the
    first put, the overwrite and the read, so no order of effects explains the read."""
    rng = random.Random(seed)
    choices: list[tuple[int, str | None]] = []
    puts = [op for op in operations if op.f == "put"]
    for position, read in enumerate(operations):
        if read.f != "get":
            continue
        # A put is stale for this read if it returned before some put was invoked that
        # returned before the read was invoked.
        overwritten_before = max((w.call for w in puts if w.ret < read.call), default=None)
        if overwritten_before is None:
            continue
        choices.extend((position, p.value) for p in puts
                       if p.ret < overwritten_before and p.value != read.result)
    if not choices:
        raise ValueError("no read can be made stale in this history")
    position, value = rng.choice(choices)
    corrupted = list(operations)
    corrupted[position] = replace(corrupted[position], result=value)
    return corrupted


def history_lines(operations: list[SimulatedOperation]) -> Iterator[str]:
    """The operations as JSON lines of invoke and ok events, in time order (an invoke
    before a completion of the same instant)."""
    events: list[tuple[int, int, int, dict[str, object]]] = []
    for op in operations:
        events.append((op.call, 0, op.process, {
            "process": op.process, "type": "invoke", "f": op.f, "key": KEY,
            "value": op.value, "time": op.call}))
        events.append((op.ret, 1, op.process, {
            "process": op.process, "type": "ok", "f": op.f, "key": KEY,
            "value": op.value if op.f == "put" else op.result, "time": op.ret}))
    events.sort(key=lambda event: event[:3])
    for *_, event in events:
        yield json.dumps(event)
