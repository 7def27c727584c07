"""The data path: splits cover every line once, partitions are stable, apps load or fail
with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from distlab.apps.mr.loader import AppError, load_app
from distlab.protocols.mapreduce import InputFile, plan_splits
from distlab.runtime.mapreduce.sequential import run_sequential
from distlab.runtime.mapreduce.taskio import (
    merge_partitions,
    read_split,
    reduce_lines,
    run_map,
    write_partitions,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "mapreduce"


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
        blobs = [(tmp_path / "work" / "job-1" / f"map-{m}-1-{reduce_index}.json").read_bytes()
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
