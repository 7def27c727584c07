"""Word count: how often each word occurs. A word is a maximal run of letters, case kept
(the 6.5840 lab's rule, Go's unicode.IsLetter).

The map function counts within its split (in-mapper combining, section 4.3 of the paper), so
a map task emits one pair per distinct word instead of one per occurrence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Word characters that are neither digits nor underscore: exactly the letters.
WORD = re.compile(r"[^\W\d_]+")


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    counts = Counter(WORD.findall(contents))
    return [(word, str(count)) for word, count in counts.items()]


def combine(key: str, values: list[str]) -> str:
    return str(sum(int(value) for value in values))


def reduce(key: str, values: list[str]) -> str:
    return str(sum(int(value) for value in values))
