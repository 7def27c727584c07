"""Inverted index: for each word, how many documents contain it and which, by name."""

from __future__ import annotations

import re
from collections.abc import Iterable

WORD = re.compile(r"[^\W\d_]+")


def map(document: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(word, document) for word in set(WORD.findall(contents))]


def reduce(key: str, values: list[str]) -> str:
    documents = sorted(values)
    return f"{len(documents)} {','.join(documents)}"
