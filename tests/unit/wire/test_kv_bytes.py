"""Keys and values as bytes, their str forms, and the group a byte key belongs to."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from distlab.wire.kv_bytes import describe, printable, to_bytes, to_text
from distlab.wire.sharding import group_of


@given(st.binary(max_size=64))
def test_every_byte_string_has_a_str_form_that_comes_back(data: bytes) -> None:
    assert to_bytes(to_text(data)) == data
    assert group_of(to_text(data), 7) == group_of(data, 7) == zlib.crc32(data) % 7


@given(st.text(max_size=32))  # hypothesis draws no surrogates unless asked
def test_a_str_key_is_its_utf8_bytes(text: str) -> None:
    assert to_bytes(text) == text.encode("utf-8")
    assert to_text(text.encode("utf-8")) == text


def test_descriptions_are_short_and_printable() -> None:
    assert describe("clé") == "'clé'"
    assert describe(b"\xff\x00") == "b'\\xff\\x00'"
    assert describe("\udcff") == "b'\\xff'"
    assert describe(b"x" * 100, limit=4) == "'xxxx'... (100 bytes)"
    assert describe(b"\xff" * 100, limit=2) == "b'\\xff\\xff'... (100 bytes)"
    assert printable(b"a\xffb") == "a\\xffb"
    assert printable("\ud800") == "\\ud800"
