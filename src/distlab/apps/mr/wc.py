"""Word count: how often each word occurs. A word is a maximal run of letters, case kept
(the 6.5840 lab's rule, Go's unicode.IsLetter).

The map function counts within its split (in-mapper combining, section 4.3 of the paper), so
a map task emits one pair per distinct word instead of one per occurrence.

Counting works on the UTF-8 bytes: every ASCII byte that is not a letter becomes a space, and
bytes.split() cuts the text into tokens in C, several times faster than a Unicode regular
expression over the str. No word spans an ASCII non-letter, so the tokens of ASCII letters
are words as they are. A token with non-ASCII bytes holds whole UTF-8 characters (all of
their bytes are >= 0x80) and may hold non-letters too (a curly quote, a dash): those few
tokens go through the regular expression, which finds in them exactly the words it would
find there in the whole text.
"""

from __future__ import annotations

import builtins
import re
from collections import Counter
from collections.abc import Iterable

# Word characters that are neither digits nor underscore: exactly the letters.
WORD = re.compile(r"[^\W\d_]+")

# ASCII letters and every non-ASCII byte stay; other ASCII bytes become spaces.
_TOKENS = bytes(
    byte if byte >= 0x80 or chr(byte).isalpha() else ord(" ") for byte in range(256)
)


def count_words(contents: str) -> dict[str, int]:
    """How often each word occurs in `contents`."""
    data = contents.encode("utf-8", errors="surrogatepass")
    counts = Counter(data.translate(_TOKENS).split())
    if not counts:
        return {}
    tokens = list(counts)
    if contents.isascii():
        # Decoding the tokens joined is one C call instead of one per token.
        return dict(zip(b"\n".join(tokens).decode("ascii").split("\n"), counts.values(),
                        strict=True))
    words: Counter[str] = Counter()
    for token, count in counts.items():
        if token.isascii():
            words[token.decode("ascii")] += count
        else:
            for word in WORD.findall(token.decode("utf-8", errors="surrogatepass")):
                words[word] += count
    return words


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(word, str(count)) for word, count in count_words(contents).items()]


# `map` above is the application's map function, so these count with builtins.map.


def combine(key: str, values: list[str]) -> str:
    return str(sum(builtins.map(int, values)))


def reduce(key: str, values: list[str]) -> str:
    return str(sum(builtins.map(int, values)))
