"""The data path: splits cover every line once, partitions decode to what was encoded, the
distributed path equals the sequential one, apps load or fail with one line."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest

from distlab.apps.mr import wc
from distlab.apps.mr.loader import AppError, load_app
from distlab.protocols.mapreduce import InputFile, plan_splits
from distlab.runtime.mapreduce.sequential import run_sequential
from distlab.runtime.mapreduce.taskio import (
    decode_partition,
    encode_partition,
    merge_partitions,
    read_split,
    reduce_lines,
    run_map,
    write_partitions,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "mapreduce"
INPUT_SAMPLE = (DATA / "pg-grimm.txt").read_text()[:20000]


@pytest.mark.parametrize("split_bytes", [1, 7, 64, 1000, 10**6])
def test_splits_cover_every_line_exactly_once(tmp_path: Path, split_bytes: int) -> None:
    text = "".join(f"line {n} {'x' * (n % 13)}\n" for n in range(200)) + "no newline at end"
    path = tmp_path / "input.txt"
    path.write_text(text)
    splits = plan_splits((InputFile(str(path), path.stat().st_size),), split_bytes)
    assert sum(split.length for split in splits) == len(text)
    pieces = [read_split(split)[0] for split in splits]
    assert "".join(pieces) == text


def test_distributed_map_and_reduce_equal_the_sequential_reference(tmp_path: Path) -> None:
    app = load_app("wc")
    inputs = sorted(DATA.glob("pg-*.txt"))[:3]
    reference = run_sequential(app, inputs, tmp_path / "seq")
    reduces = 3
    for index, path in enumerate(inputs):
        contents = path.read_text()
        write_partitions(tmp_path / "work", 1, index, 1, run_map(app, str(path), contents,
                                                                  reduces))
    lines: list[str] = []
    for reduce_index in range(reduces):
        blobs = [(tmp_path / "work" / "job-1" / f"map-{m}-1-{reduce_index}.part").read_bytes()
                 for m in range(len(inputs))]
        lines += reduce_lines(app, merge_partitions(blobs))
    assert sorted(lines) == sorted(reference.output.read_text().splitlines(keepends=True))


def test_an_app_without_reduce_is_refused_in_one_line(tmp_path: Path) -> None:
    module = tmp_path / "half.py"
    module.write_text("def map(filename, contents):\n    return []\n")
    with pytest.raises(AppError, match=r"has no reduce\(\) function") as caught:
        load_app(str(module))
    assert "\n" not in str(caught.value)
    with pytest.raises(AppError, match="not found"):
        load_app("no_such_module_here")


@pytest.mark.parametrize("partition", [
    ([], []),
    (["a"], ["1"]),
    (["", "b", ""], ["", "2", "x y"]),
    (["caf\u00e9", "\ud800lone", "tab\there"], ["\u2028", "\x85", "\r"]),
    (["line\nbreak", "b"], ["1", "2"]),
    (["a", "b"], ["multi\nline", "2"]),
])
def test_partitions_decode_to_what_was_encoded(partition: tuple[list[str], list[str]]) -> None:
    data = encode_partition(partition)
    assert decode_partition(data) == partition
    # Newlines inside keys or values take the JSON form; everything else splits on lines.
    has_newline = any("\n" in text for text in partition[0] + partition[1])
    assert data.startswith(b"[" if has_newline else b"L")


def test_a_cut_partition_is_an_error_not_fewer_keys() -> None:
    data = encode_partition((["a", "b", "c"], ["1", "2", "3"]))
    with pytest.raises(ValueError):
        decode_partition(data[:-3])


def test_merge_keeps_map_order_and_partitions_hold_every_key_once() -> None:
    app = load_app("indexer")
    first = run_map(app, "doc-1", "b a b", 2)
    second = run_map(app, "doc-2", "a c", 2)
    for partitions in (first, second):
        keys = [key for part_keys, _ in partitions for key in part_keys]
        assert len(keys) == len(set(keys))
    groups = merge_partitions(
        encode_partition(first[r]) if m == 0 else encode_partition(second[r])
        for r in range(2) for m in range(2)
    )
    assert groups == {"a": ["doc-1", "doc-2"], "b": ["doc-1"], "c": ["doc-2"]}


def test_wc_counts_words_as_the_unicode_letter_rule_does() -> None:
    """wc's byte-level tokenizer against the regular expression it replaces, on text with
    accents, curly quotes, dashes, other scripts, digits and lone surrogates."""
    word = re.compile(r"[^\W\d_]+")
    alphabet = ("abXY 09_\n\t-'\u201c\u201d\u2014\u00e9\u00df\u00b2\u0663\u65e5\ufeff\u0301"
                "\ud800,.\u01c5")
    rng = random.Random(7)
    texts = ["", "   ", "caf\u00e9 na\u00efve \u201cquoted\u201d\u2014dash", INPUT_SAMPLE]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
              for _ in range(3000)]
    for text in texts:
        assert wc.count_words(text) == Counter(word.findall(text)), repr(text)
