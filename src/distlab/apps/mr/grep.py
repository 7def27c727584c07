"""Distributed grep (the paper's first example): every line matching a regular expression.

The pattern comes from DISTLAB_MR_GREP_PATTERN in each worker's environment (default
`Sherlock Holmes`). The output key is the matching line; the value lists the files it occurs
in, sorted, with a count when the line occurs more than once.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable

PATTERN = re.compile(os.environ.get("DISTLAB_MR_GREP_PATTERN", "Sherlock Holmes"))


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    name = os.path.basename(filename)
    return [(line.strip(), name) for line in contents.splitlines() if PATTERN.search(line)]


def reduce(key: str, values: list[str]) -> str:
    counts = Counter(values)
    return ",".join(
        name if count == 1 else f"{name}*{count}" for name, count in sorted(counts.items())
    )
