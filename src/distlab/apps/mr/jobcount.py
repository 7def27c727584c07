"""Lab test application: counts map invocations across all workers through marker files in
the current directory; the single output line `a N` says how many map calls there were."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable

_calls = 0


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    global _calls
    marker = f"mr-worker-jobcount-{os.getpid()}-{_calls}"
    _calls += 1
    with open(marker, "w") as handle:
        handle.write("x")
    time.sleep(2.0 + random.random() * 3.0)
    return [("a", "x")]


def reduce(key: str, values: list[str]) -> str:
    return str(sum(1 for name in os.listdir(".") if name.startswith("mr-worker-jobcount")))
