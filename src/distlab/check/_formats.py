"""Choosing a reader for a history file, by name or by its first line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from distlab.check._edn import read_edn_log, read_jepsen_log
from distlab.check._history import History, HistoryError
from distlab.check._jsonl import read_history

READERS: dict[str, Callable[[str | Path], History]] = {
    "jsonl": read_history,
    "jepsen": read_jepsen_log,
    "edn": read_edn_log,
}

_BY_SUFFIX = {".jsonl": "jsonl", ".json": "jsonl", ".log": "jepsen", ".edn": "edn",
              ".txt": "edn"}


def detect_format(path: str | Path) -> str:
    """`edn` for `{:...`, `jsonl` for other `{...`, `jepsen` for Jepsen log lines; else
    the file's suffix decides."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                text = line.strip()
                if not text:
                    continue
                if text.startswith("{:") or text.startswith("{ :"):
                    return "edn"
                if text.startswith("{"):
                    return "jsonl"
                if "jepsen" in text:
                    return "jepsen"
                if Path(path).suffix.lower() in _BY_SUFFIX:
                    return _BY_SUFFIX[Path(path).suffix.lower()]
                raise HistoryError(str(path), None, "cannot tell the format from its first "
                                   "line; give --format jsonl, jepsen or edn")
    except OSError as error:
        raise HistoryError(str(path), None, f"cannot read: {error.strerror or error}") from None
    # An empty file is an empty history in any format; name the one its suffix suggests.
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "jsonl")


def load_history(path: str | Path, fmt: str | None = None) -> History:
    """Read a history in format `fmt` (detected from the content when None)."""
    chosen = detect_format(path) if fmt is None else fmt
    if chosen not in READERS:
        raise ValueError(f"unknown format {chosen!r}: expected one of {', '.join(READERS)}")
    return READERS[chosen](path)
