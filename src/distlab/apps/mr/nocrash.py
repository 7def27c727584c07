"""Lab test application: crash without the crashes, the reference for crash's output."""

from __future__ import annotations

from collections.abc import Iterable


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [
        ("a", filename),
        ("b", str(len(filename))),
        ("c", str(len(contents))),
        ("d", "xyzzy"),
    ]


def reduce(key: str, values: list[str]) -> str:
    return " ".join(sorted(values))
