"""Lab test application: every reduce task records how many reduce tasks ran at the same
time, so a test can see that reduces run in parallel on different workers."""

from __future__ import annotations

from collections.abc import Iterable

from distlab.apps.mr._parallel import nparallel


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(key, "1") for key in "abcdefghij"]


def reduce(key: str, values: list[str]) -> str:
    return str(nparallel("reduce"))
