"""What `distlab test` tells a person while it runs: the fault windows it plans, a warning
when the time limit leaves a named fault out, and no log lines of gRPC's C core."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import distlab_command

RUN_TIMEOUT_SECONDS = 300
# A C-core log line: severity, date, time, thread, source file and line, as in
# `I1201 22:20:16.996305    2106 fork_posix.cc:71] Other threads are currently ...`.
GRPC_CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w./-]+:\d+\]", re.M)


def environment_without_grpc_verbosity() -> dict[str, str]:
    """The test's environment as a user's shell would have it: GRPC_VERBOSITY unset (a test
    that ran a command in this process may have set the command's default)."""
    return {name: value for name, value in os.environ.items() if name != "GRPC_VERBOSITY"}


def test_a_time_limit_too_short_for_every_fault_is_warned_about_at_the_start(
        tmp_path: Path) -> None:
    command = distlab_command("test", "--time-limit", "40", "--report", str(tmp_path / "r"),
                              "--seed", "1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment_without_grpc_verbosity())
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        # The plan and the warning come first; the cluster's leaders once it is up, and the
        # run is interrupted then (its own heal-and-stop path), not waited for.
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if ": leaders: " in line or "a group has no leader" in line:
                break
        process.send_signal(signal.SIGINT)
        stdout, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "\n".join(lines) + rest
    assert process.returncode == 130, output
    plan = [line for line in lines if "fault windows:" in line]
    assert plan and plan[0].endswith(
        "fault windows: 10-20 s kill, 30-40 s pause (a heal that takes time moves the "
        "windows after it back as long)"), output
    warnings = [line for line in lines if ": warning: " in line]
    assert warnings, output
    assert "--time-limit 40 leaves no window for partition" in warnings[0]
    assert "try --time-limit 64 or --nemesis-interval 6" in warnings[0]
    assert lines.index(warnings[0]) < next(
        index for index, line in enumerate(lines) if "starting 3 nodes" in line), output
    assert "interrupted" in rest, output
    assert not stdout


@pytest.mark.slow
def test_a_run_prints_no_grpc_core_log_lines(tmp_path: Path) -> None:
    """Restarting a killed node forks while gRPC's threads are busy, which its C core
    reported on stderr in the middle of the progress lines."""
    report = tmp_path / "report"
    completed = subprocess.run(
        distlab_command("test", "--time-limit", "20", "--report", str(report), "--seed", "2"),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
        env=environment_without_grpc_verbosity())
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    assert GRPC_CORE_LINE.findall(output) == [], output[-6000:]
    assert "absl::InitializeLog" not in output
    # Every line is the command's own: progress, or the summary.
    for line in completed.stderr.splitlines():
        assert line.startswith("distlab test"), line
    result = json.loads((report / "result.json").read_text())
    assert [fault["kind"] for fault in result["faults"]] == ["kill"]
    assert result["faults_not_run"] == ["pause", "partition"]
    # The latency plot's legend names only the fault that ran.
    legend = (report / "latency.svg").read_text()
    assert "kill window" in legend
    assert "pause window" not in legend and "partition window" not in legend
