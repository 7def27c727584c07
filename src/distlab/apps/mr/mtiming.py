"""Lab test application: records when each map task started and how many map tasks ran at
the same time, so a test can see that maps run in parallel on different workers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from distlab.apps.mr._parallel import nparallel


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    started = time.time()
    pid = os.getpid()
    running = nparallel("map")
    return [(f"times-{pid}", f"{started:.1f}"), (f"parallel-{pid}", str(running))]


def reduce(key: str, values: list[str]) -> str:
    return " ".join(sorted(values))
