"""Keys and values of the KV store are byte strings; a `str` stands for its UTF-8 bytes.

Any bytes are allowed. A byte that is not part of valid UTF-8 travels inside a `str` as a lone
surrogate, U+DC80 to U+DCFF (Python's `surrogateescape`, as `os.fsdecode` does for file
names), so every byte string has a `str` form and comes back from it unchanged, while a key
written as `str` has exactly the bytes its UTF-8 encoding gives.
"""

from __future__ import annotations

KVBytes = str | bytes
"""A key or value as a caller may give it: the bytes themselves, or a `str` standing for them."""

DESCRIBE_LIMIT = 48


def to_bytes(data: KVBytes) -> bytes:
    """The bytes `data` stands for; raises UnicodeEncodeError for a `str` holding a surrogate
    that no byte escapes to (outside U+DC80 to U+DCFF)."""
    if isinstance(data, bytes):
        return data
    return data.encode("utf-8", "surrogateescape")


def to_text(data: bytes) -> str:
    """The `str` form of `data`: its UTF-8 text, with each other byte as a lone surrogate."""
    return data.decode("utf-8", "surrogateescape")


def printable(data: KVBytes) -> str:
    """`data` as valid text, for span attributes and logs: its UTF-8 text, each other byte as
    `\\xNN`."""
    try:
        raw = to_bytes(data)
    except UnicodeEncodeError:
        assert isinstance(data, str)
        return data.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def describe(data: KVBytes, limit: int = DESCRIBE_LIMIT) -> str:
    """A short printable form of a key or value for messages, logs and span attributes: the
    quoted text when it is UTF-8 (`'clé'`), else a bytes literal (`b'\\xff'`); beyond `limit`
    characters it is cut, and its size follows."""
    try:
        raw = to_bytes(data)
    except UnicodeEncodeError:
        return repr(data[:limit]) + ("..." if len(data) > limit else "")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        shown = repr(raw[:limit])
        cut = len(raw) > limit
    else:
        shown = repr(text[:limit])
        cut = len(text) > limit
    return f"{shown}... ({len(raw)} bytes)" if cut else shown
