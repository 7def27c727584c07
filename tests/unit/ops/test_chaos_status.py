"""`distlab chaos status` says why a node is down, as `distlab status` does."""

from __future__ import annotations

import pytest

from distlab.cli.main import main
from distlab.ops.local_cluster import LOOPBACK, free_loopback_ports


def test_a_down_node_is_listed_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_loopback_ports(1)  # nothing listens there
    assert main(["chaos", "status", "--cluster", f"1={LOOPBACK}:{port}"]) == 1
    out = capsys.readouterr().out
    reasons = [line for line in out.splitlines() if line.startswith("node 1 is down: ")]
    assert len(reasons) == 1, out
    assert "UNAVAILABLE" in reasons[0]
