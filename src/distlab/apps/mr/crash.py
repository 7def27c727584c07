"""Lab test application: every map and reduce call may kill its worker (a third of the time)
or stall it for up to ten seconds (another third); the output is nocrash's all the same."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable


def maybe_crash() -> None:
    roll = secrets.randbelow(1000)
    if roll < 330:
        os._exit(1)
    elif roll < 660:
        time.sleep(secrets.randbelow(10_000) / 1000)


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    maybe_crash()
    return [
        ("a", filename),
        ("b", str(len(filename))),
        ("c", str(len(contents))),
        ("d", "xyzzy"),
    ]


def reduce(key: str, values: list[str]) -> str:
    maybe_crash()
    return " ".join(sorted(values))
