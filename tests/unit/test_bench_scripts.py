"""Every benchmark in bench/ at least starts: it imports what it uses (its own helpers, the
other benchmarks it builds on, distlab) and parses its options. A benchmark is a command,
not a test, so nothing else runs here; this catches one broken by a change elsewhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_the_benchmarks_are_found() -> None:
    assert len(SCRIPTS) >= 10, f"bench/ has only {[s.name for s in SCRIPTS]}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_a_benchmark_starts_and_explains_its_options(script: Path) -> None:
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                            text=True, timeout=60, check=False, cwd=BENCH)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout
