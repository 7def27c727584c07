"""What runs under simulation reaches no real world: no wall clock, no threads, no sockets,
no grpc; only the sweep runner, outside any simulated world, uses processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_layering import imported_roots

SIM = Path(__file__).resolve().parents[2] / "src" / "distlab" / "sim"
FORBIDDEN = {"grpc", "time", "threading", "socket", "os", "subprocess", "selectors", "select"}
# The sweep runner spreads seeds over processes; nothing it starts shares a world.
SWEEP_RUNNER = {"multiprocessing"}


@pytest.mark.parametrize("path", sorted(SIM.rglob("*.py")), ids=lambda p: str(p.relative_to(SIM)))
def test_the_simulator_imports_no_clock_thread_or_network(path: Path) -> None:
    roots = imported_roots(path)
    assert not roots & FORBIDDEN, f"{path.name} imports {sorted(roots & FORBIDDEN)}"
    if path.name != "harness.py":
        assert not roots & SWEEP_RUNNER, f"{path.name} imports {sorted(roots & SWEEP_RUNNER)}"


def test_a_run_loads_no_grpc_and_starts_no_thread() -> None:
    script = (
        "import sys, threading\n"
        "from distlab.sim import harness\n"
        "result, _ = harness.run_seed(harness.protocol('raft'), 3)\n"
        "assert result.ok, result.failure\n"
        "print(sorted(m for m in sys.modules if m == 'grpc' or m.startswith('grpc.')))\n"
        "print(threading.active_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["[]", "1"], done.stdout + done.stderr
