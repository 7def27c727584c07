"""The sequential reference (the lab's mrsequential): every map, then every reduce, in one
process, into a single mr-out-0. Distributed runs must produce the same lines."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from distlab.apps.mr.loader import App
from distlab.runtime.mapreduce.taskio import reduce_lines, write_output


@dataclass(frozen=True, slots=True)
class SequentialResult:
    output: Path
    input_bytes: int
    keys: int


def run_sequential(app: App, inputs: list[Path], output_dir: Path) -> SequentialResult:
    groups: dict[str, list[str]] = defaultdict(list)
    input_bytes = 0
    for path in inputs:
        data = path.read_bytes()
        input_bytes += len(data)
        for key, value in app.map(str(path), data.decode("utf-8", errors="replace")):
            groups[key].append(value)
    lines = reduce_lines(app, groups)
    write_output(output_dir, 0, lines, tag="sequential")
    return SequentialResult(output_dir / "mr-out-0", input_bytes, len(groups))
