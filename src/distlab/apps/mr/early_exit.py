"""Lab test application: the reduces of two keys take three seconds, so a worker or
coordinator that exits before every task is done leaves its mark on the output."""

from __future__ import annotations

import time
from collections.abc import Iterable


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(filename, "1")]


def reduce(key: str, values: list[str]) -> str:
    if "sherlock" in key or "tom" in key:
        time.sleep(3.0)
    return str(len(values))
