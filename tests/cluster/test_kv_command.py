"""`distlab kv` as a user runs it, against a real node: any bytes, big values, no silence."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distlab.apps.kv import MAX_VALUE_BYTES
from distlab.ops.local_cluster import free_loopback_ports
from tests.support import UpProcess


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    up = UpProcess(tmp_path_factory.mktemp("kv-command") / "cluster", nodes=1)
    try:
        yield up
    finally:
        assert up.stop() == 0


def kv(up: UpProcess | None, *args: str | bytes, stdin: bytes | None = None,
       cluster: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """`distlab kv ARGS...` with arguments and output as bytes, as a shell passes them."""
    if cluster is None:
        assert up is not None
        cluster_arguments = ["--cluster-file", str(up.cluster_file)]
    else:
        cluster_arguments = ["--cluster", cluster]
    return subprocess.run([sys.executable, "-m", "distlab", "kv", *args, *cluster_arguments],
                          input=stdin, capture_output=True, timeout=60, env=os.environ.copy())


def test_a_key_and_value_that_are_not_utf8_round_trip(one_node: UpProcess) -> None:
    put = kv(one_node, "put", b"\xff\xferaw", b"\xc3\x28\x01\x80")  # what $'\xff' passes
    assert (put.returncode, put.stdout, put.stderr) == (0, b"ok\n", b"")
    get = kv(one_node, "get", b"\xff\xferaw")
    assert (get.returncode, get.stdout, get.stderr) == (0, b"\xc3\x28\x01\x80\n", b"")
    as_hex = kv(one_node, "get", "fffe726177", "--hex")
    assert (as_hex.returncode, as_hex.stdout) == (0, b"c3280180\n")
    cas = kv(one_node, "cas", b"\xff\xferaw", b"\xc3\x28\x01\x80", b"\xfe")
    assert (cas.returncode, cas.stdout) == (0, b"ok\n")
    assert kv(one_node, "get", b"\xff\xferaw").stdout == b"\xfe\n"


def test_the_largest_value_round_trips_through_a_file_and_a_larger_one_is_refused(
    one_node: UpProcess, tmp_path: Path,
) -> None:
    largest = tmp_path / "largest"
    largest.write_bytes(bytes(range(256)) * (MAX_VALUE_BYTES // 256))
    assert largest.stat().st_size == MAX_VALUE_BYTES
    put = kv(one_node, "put", "big", "--value-file", str(largest))
    assert (put.returncode, put.stderr) == (0, b"")
    get = kv(one_node, "get", "big")
    assert get.returncode == 0 and get.stdout == largest.read_bytes() + b"\n"

    too_large = tmp_path / "too-large"
    too_large.write_bytes(largest.read_bytes() + b"!")
    refused = kv(one_node, "put", "big", "--value-file", str(too_large))
    assert refused.returncode == 2
    assert refused.stderr.decode() == (
        f"distlab: error: the value in {too_large} is 1048577 bytes, above the limit of "
        "1048576 bytes (1 MiB)\n")
    from_stdin = kv(one_node, "append", "big", "-", stdin=too_large.read_bytes())
    assert from_stdin.returncode == 2
    assert from_stdin.stderr.decode() == (
        "distlab: error: the value on standard input is at least 1048577 bytes, above the "
        "limit of 1048576 bytes (1 MiB)\n")
    # The store refuses what would grow past the limit, in the same words.
    grown = kv(one_node, "append", "big", "-", stdin=b"!")
    assert grown.returncode == 2
    assert grown.stderr.decode().count("\n") == 1
    assert "is 1048577 bytes, above the limit of 1048576 bytes (1 MiB)" in grown.stderr.decode()
    assert kv(one_node, "get", "big").stdout == largest.read_bytes() + b"\n"


def test_a_cluster_that_refuses_every_connection_is_answered_at_once() -> None:
    cluster = ",".join(f"{n}=127.0.0.1:{port}" for n, port in
                       enumerate(free_loopback_ports(3), 1))
    started = time.monotonic()
    result = kv(None, "get", "k", "--timeout", "60", cluster=cluster)
    elapsed = time.monotonic() - started
    # Far from the 60 s budget; the margin covers a slow interpreter start on a busy machine.
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert result.returncode == 2
    [line] = result.stderr.decode().splitlines()
    assert "cannot connect to any member" in line and "Connection refused" in line
    assert "nothing was read" in line
