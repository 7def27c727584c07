"""KV write throughput and latency of a 3-node distlab cluster, beside etcd and PySyncObj.

Every system runs on this machine's loopback, 3 members, durable writes, in the same run:

- distlab: a fresh `distlab up --nodes 3`, driven by `distlab bench kv` (closed loop, one
  Python process, 100-byte values), with GROUPS=1 and GROUPS=3 (`--groups`), on Raft and,
  with `--engines raft,paxos`, on Multi-Paxos too, and with `--before PYTHON` an older
  build; the builds' passes are interleaved, each on a fresh cluster.
- etcd (Debian's etcd-server): 3 members started here with fsync on (the default), driven
  by the same kind of closed loop over grpc.aio, sending hand-encoded PutRequests through the
  generic `/etcdserverpb.KV/Put` method to the leader.
- PySyncObj (PyPI): 3 members in 3 processes, each with a journal file, replicating a
  ReplDict; the client threads run inside member 1's process, as PySyncObj is meant to be
  embedded. Its journal is written through mmap without an fsync per entry, so it promises
  less durability than the other two; the table says so. PySyncObj's CRITICAL log records
  (it warns when a follower truncates entries it already applied) are counted and summed up
  in one line per configuration.

- grpc floor: not a store but a reference point, a grpc.aio server in one process that answers
  OpenSession and Put at once, with no log, no replication and no disk, driven by the same
  `distlab bench kv` client. No Python grpc.aio KV server can beat it with this client on this
  machine, so it shows how much of the gap to etcd is the RPC layer's own cost.

distlab (every build) and etcd are measured in interleaved passes, each on a fresh cluster:
a pass measures each at 64 and at 1 client, so every pass gives its own ratio to etcd, and
the table shows the medians over the passes. Beside writes/s and latency, each row shows
what every process spent per acknowledged write (user + system CPU from /proc/PID/stat: the
leader, the mean of the followers, the load process) and how well writes were batched:
entries per replication message and per WAL fsync, from the members' own counters (etcd
counts no messages). A system that is not installed is skipped with a line saying so.

Failover: on fresh clusters (--failovers, 5), one writer writes for --quiet-seconds while
nothing fails, and the terms begun meanwhile are counted as false elections; then the
leader is killed with SIGKILL and the time until the next write succeeds is measured. distlab
runs it with its default timing and with RAFT_TICK_MS=10.

Run: .venv/bin/python bench/kv_throughput.py [--duration S] [--runs N] [--systems ...]
     [--groups 1,3] [--engines raft,paxos] [--before OTHER_VENV/bin/python]
     [--failovers N] [--no-failover]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from distlab.cli.common import format_table
from distlab.client import KVClient, KVError, Rejected
from distlab.core.ids import NodeId
from distlab.ops.load import LoadResult, measure_load, summarize
from distlab.ops.local_cluster import free_loopback_ports
from distlab.ops.status import fetch_status, wait_for_leader
from distlab.runtime import loop
from distlab.runtime.heap import settle_heap

VALUE_SIZE = 100
T = TypeVar("T")
KEYS = 1000
CLIENT_COUNTS = (1, 64)


@dataclass(slots=True)
class Row:
    system: str
    clients: int
    writes_per_second: float
    p50_ms: float
    p99_ms: float
    note: str = ""


def median_row(system: str, clients: int, summaries: list[dict[str, Any]], note: str = ""
               ) -> Row:
    return Row(
        system, clients,
        statistics.median(s["ops_per_second"] for s in summaries),
        statistics.median(s["latency_ms"]["p50"] for s in summaries),
        statistics.median(s["latency_ms"]["p99"] for s in summaries),
        note,
    )


class Skipped(Exception):
    """A system cannot be measured here; the message says why."""


# ---- distlab ----

@dataclass(frozen=True, slots=True)
class Build:
    """A distlab to measure: its name in the table, its interpreter (whose `distlab` package
    is the build), and the number of groups its cluster runs."""

    name: str
    python: str = sys.executable
    groups: int = 1
    engine: str = "raft"
    # Settings for the nodes, as environment variables (RAFT_TICK_MS=10, say).
    env: tuple[tuple[str, str], ...] = ()

    def up_arguments(self) -> list[str]:
        # An older build may lack --groups and --engine; their defaults are its only ones.
        return ((["--groups", str(self.groups)] if self.groups != 1 else [])
                + (["--engine", self.engine] if self.engine != "raft" else []))


@contextlib.contextmanager
def distlab_cluster(nodes: int = 3, build: Build = Build("distlab")) -> Iterator[Path]:
    """A fresh `distlab up` in a temporary directory; yields its cluster.json."""
    with tempfile.TemporaryDirectory(prefix="distlab-bench-") as data_dir:
        process = subprocess.Popen(
            [build.python, "-m", "distlab", "up", "--nodes", str(nodes),
             "--data-dir", data_dir, *build.up_arguments()],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **dict(build.env)},
        )
        cluster_file = Path(data_dir) / "cluster.json"
        try:
            deadline = time.monotonic() + 60
            while not cluster_file.exists():
                if process.poll() is not None:
                    raise Skipped(f"distlab up exited: {process.stderr.read().strip()}"
                                  if process.stderr else "distlab up exited")
                if time.monotonic() > deadline:
                    raise Skipped("distlab up did not write cluster.json within 60 s")
                time.sleep(0.1)  # polling for the file distlab up writes once nodes serve
            yield cluster_file
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cluster_addresses(cluster_file: Path) -> dict[int, str]:
    document = json.loads(cluster_file.read_text())
    return {int(node["id"]): node["address"] for node in document["nodes"]}


async def first_write(addresses: dict[int, str], timeout: float) -> float:
    """Seconds until a write succeeds (leader elected, KV served)."""
    started = time.perf_counter()
    async with KVClient(addresses, call_timeout=0.5, operation_timeout=timeout) as client:
        await client.put("bench-ready", "1")
    return time.perf_counter() - started


def ensure_distlab_serves(cluster_file: Path) -> None:
    try:
        asyncio.run(first_write(cluster_addresses(cluster_file), timeout=30))
    except Rejected as error:
        raise Skipped(f"the cluster does not serve KV yet ({error})") from error
    except KVError as error:
        raise Skipped(f"the cluster took no write within 30 s ({error})") from error


# ---- what a run costs each process ----

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used (utime and stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scrape_counters(address: str, names: tuple[str, ...]) -> dict[str, float]:
    """The sum over labels of each counter in `names` on a Prometheus page (missing: 0); a
    name with labels (`x_bucket{le="0.001"}`) is that one series."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        page = response.read().decode()
    totals = dict.fromkeys(names, 0.0)
    for line in page.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.partition("{")[0]
        if series in totals and series != name:
            totals[series] += float(value)
        elif name in totals:
            totals[name] += float(value)
    return totals


@dataclass(slots=True)
class Measured:
    """One load run of one system: its summary and what each process spent per write."""

    summary: dict[str, Any]
    leader_cpu_us: float
    follower_cpu_us: float  # the mean of the followers'
    client_cpu_us: float
    entries_per_message: float | None
    entries_per_fsync: float | None

    @property
    def writes_per_second(self) -> float:
        return float(self.summary["ops_per_second"])


def per_write_us(seconds: float, writes: int) -> float:
    return seconds * 1e6 / writes if writes else float("nan")


# ---- distlab ----

def distlab_counters(engine: str) -> tuple[str, str, str]:
    """(entries committed, WAL fsyncs, peer envelopes sent): the counters the replication
    figures come from."""
    return (f"distlab_{engine}_proposals_committed_total",
            "distlab_wal_fsync_duration_seconds_count", "distlab_peer_messages_sent_total")


@dataclass(slots=True)
class DistlabMember:
    id: int
    pid: int
    metrics_address: str


def cluster_members(cluster_file: Path) -> list[DistlabMember]:
    return [DistlabMember(int(n["id"]), int(n["pid"]), n["metrics_address"])
            for n in json.loads(cluster_file.read_text())["nodes"]]


async def distlab_roles(cluster_file: Path) -> tuple[DistlabMember, list[DistlabMember]]:
    """The member that leads group 0 and the others."""
    members = cluster_members(cluster_file)
    addresses = cluster_addresses(cluster_file)
    leader_id = (await wait_for_leader({NodeId(m.id): addresses[m.id] for m in members},
                                       10))[0]
    leader = next(m for m in members if m.id == leader_id)
    return leader, [m for m in members if m is not leader]


def run_bench_kv(target: list[str], clients: int, duration: float, processes: int = 1,
                 python: str = sys.executable) -> tuple[dict[str, Any], float]:
    """One `distlab bench kv` against `target` (its --cluster or --cluster-file arguments):
    its JSON summary and the CPU seconds the load process spent."""
    client_before = children_cpu_seconds()
    completed = subprocess.run(
        [python, "-m", "distlab", "bench", "kv", *target,
         "--clients", str(clients), "--duration", str(duration),
         "--value-size", str(VALUE_SIZE), "--keys", str(KEYS),
         "--processes", str(min(processes, clients)), "--json"],
        capture_output=True, text=True, timeout=duration + 120,
    )
    client_cpu = children_cpu_seconds() - client_before
    if completed.returncode != 0:
        raise Skipped(f"distlab bench kv failed: {completed.stderr.strip()}")
    return json.loads(completed.stdout), client_cpu


def measure_distlab(cluster_file: Path, clients: int, duration: float, processes: int,
                    build: Build) -> Measured:
    """`distlab bench kv` against the cluster, with each process's CPU and the replication
    counters read around it.

    Entries per message: each append a follower receives has one reply, so the appends are
    half of the raft envelopes all members sent (heartbeats and their replies included);
    committed entries times followers over that. Entries per fsync: the entries committed
    on a member over its WAL fsyncs, averaged over the members.
    """
    committed_name, fsyncs_name, sent_name = names = distlab_counters(build.engine)
    leader, followers = asyncio.run(distlab_roles(cluster_file))
    members = [leader, *followers]
    cpu_before = [process_cpu_seconds(m.pid) for m in members]
    counters_before = [scrape_counters(m.metrics_address, names) for m in members]
    summary, client_cpu = run_bench_kv(["--cluster-file", str(cluster_file)], clients,
                                       duration, processes, build.python)
    cpu = [process_cpu_seconds(m.pid) - before for m, before in zip(members, cpu_before,
                                                                     strict=True)]
    deltas = [{name: after[name] - before[name] for name in names}
              for before, after in zip(
                  counters_before,
                  [scrape_counters(m.metrics_address, names) for m in members], strict=True)]
    writes = int(summary["ops"])
    committed = deltas[0][committed_name]
    appends = sum(d[sent_name] for d in deltas) / 2
    fsync_ratios = [d[committed_name] / d[fsyncs_name] for d in deltas if d[fsyncs_name]]
    return Measured(
        summary, per_write_us(cpu[0], writes),
        statistics.mean(per_write_us(c, writes) for c in cpu[1:]),
        per_write_us(client_cpu, writes),
        committed * len(followers) / appends if appends else None,
        statistics.mean(fsync_ratios) if fsync_ratios else None,
    )


async def group0_term(addresses: dict[int, str]) -> int:
    """The highest term of group 0 any member reports."""
    terms = [status.groups[0].term for status in
             [await fetch_status(address) for address in addresses.values()]
             if status is not None and status.groups]
    return max(terms, default=0)


async def distlab_failover_once(cluster_file: Path, quiet_seconds: float
                                ) -> tuple[float, int]:
    """Under a warm client (session open, leader known): count the elections of group 0
    while nothing fails, for `quiet_seconds` of light writes (false elections); then kill
    the leader with SIGKILL and time the next acknowledged write."""
    addresses = cluster_addresses(cluster_file)
    async with KVClient(addresses, call_timeout=0.5, operation_timeout=30) as client:
        await client.put("failover", "before")
        term = await group0_term(addresses)
        deadline = time.monotonic() + quiet_seconds
        while time.monotonic() < deadline:
            await client.put("failover", "quiet")
        false_elections = await group0_term(addresses) - term
        leader, _ = await distlab_roles(cluster_file)
        os.kill(leader.pid, signal.SIGKILL)
        started = time.perf_counter()
        await client.put("failover", "after")
        return time.perf_counter() - started, false_elections


def distlab_failover(build: Build, runs: int, quiet_seconds: float
                     ) -> tuple[list[float], int]:
    """Failover times of `runs` fresh clusters, and their false elections in all."""
    times, false_elections = [], 0
    for _ in range(runs):
        with distlab_cluster(build=build) as cluster_file:
            ensure_distlab_serves(cluster_file)
            took, elections = asyncio.run(distlab_failover_once(cluster_file, quiet_seconds))
            times.append(took)
            false_elections += elections
    return times, false_elections


# ---- etcd ----

def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_put_request(key: bytes, value: bytes) -> bytes:
    """etcdserverpb.PutRequest: field 1 key (bytes), field 2 value (bytes)."""
    return (b"\x0a" + encode_varint(len(key)) + key
            + b"\x12" + encode_varint(len(value)) + value)


def decode_fields(data: bytes) -> dict[int, int | bytes]:
    """The varint and length-delimited fields of a protobuf message (last value wins)."""
    fields: dict[int, int | bytes] = {}
    position = 0

    def varint() -> int:
        nonlocal position
        result = shift = 0
        while True:
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while position < len(data):
        tag = varint()
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            fields[number] = varint()
        elif wire_type == 2:
            length = varint()
            fields[number] = data[position:position + length]
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return fields


async def etcd_status(address: str) -> tuple[int, int] | None:
    """(this member's id, the leader's id) from Maintenance.Status, or None if it is down."""
    async with grpc.aio.insecure_channel(address) as channel:
        status = channel.unary_unary("/etcdserverpb.Maintenance/Status")
        try:
            response = await status(b"", timeout=0.5)
        except grpc.aio.AioRpcError:
            return None
    fields = decode_fields(response)
    header = fields.get(1, b"")
    member_id = decode_fields(header).get(2, 0) if isinstance(header, bytes) else 0
    leader = fields.get(4, 0)
    assert isinstance(member_id, int) and isinstance(leader, int)
    return member_id, leader


async def etcd_leader(addresses: list[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address in addresses:
            status = await etcd_status(address)
            if status is not None and status[1] and status[0] == status[1]:
                return address
        await asyncio.sleep(0.05)  # no leader yet: an election is running
    raise Skipped(f"etcd elected no leader within {timeout:.0f} s")


class EtcdCluster:
    """Three etcd members on loopback, fsync on (etcd's default)."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        ports = free_loopback_ports(6)
        self.names = [f"m{i}" for i in range(1, 4)]
        self.client_addresses = [f"127.0.0.1:{ports[2 * i]}" for i in range(3)]
        peers = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(3)]
        initial = ",".join(f"{n}={p}" for n, p in zip(self.names, peers, strict=True))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        for name, client, peer in zip(self.names, self.client_addresses, peers, strict=True):
            with (data_dir / f"{name}.log").open("wb") as log:
                self.processes[client] = subprocess.Popen(
                    [binary, "--name", name, "--data-dir", str(data_dir / name),
                     "--listen-client-urls", f"http://{client}",
                     "--advertise-client-urls", f"http://{client}",
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", initial, "--initial-cluster-state", "new",
                     "--initial-cluster-token", "distlab-bench", "--logger", "zap",
                     "--log-level", "error"],
                    stdout=log, stderr=log,
                )

    def kill(self, address: str) -> None:
        self.processes[address].kill()
        self.processes[address].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def etcd_cluster() -> Iterator[EtcdCluster]:
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if binary is None:
        raise Skipped("etcd is not installed (apt-get install etcd-server)")
    with tempfile.TemporaryDirectory(prefix="etcd-bench-") as data_dir:
        cluster = EtcdCluster(binary, Path(data_dir))
        try:
            yield cluster
        finally:
            cluster.stop()


async def etcd_load(address: str, clients: int, duration: float) -> LoadResult:
    value = b"v" * VALUE_SIZE
    async with grpc.aio.insecure_channel(address) as channel:
        put = channel.unary_unary("/etcdserverpb.KV/Put")
        counters = [0] * clients

        async def operation(number: int) -> None:
            counters[number] += 1
            key = f"bench-{(number * 7919 + counters[number]) % KEYS}".encode()
            await put(encode_put_request(key, value), timeout=2.0)

        await put(encode_put_request(b"bench-warmup", value), timeout=10.0)
        settle_heap()  # as distlab's own load processes do before they measure
        return await measure_load(clients, duration, operation)


ETCD_COUNTERS = ("etcd_server_proposals_committed_total",
                 "etcd_disk_wal_fsync_duration_seconds_count")


def measure_etcd(cluster: EtcdCluster, clients: int, duration: float) -> Measured:
    """The closed loop against etcd's leader, in this process, with each member's CPU and
    etcd's own counters of committed proposals and WAL fsyncs around it. etcd counts no
    replication messages, so its entries per message stay unknown."""
    leader = asyncio.run(etcd_leader(cluster.client_addresses, 30))
    followers = [a for a in cluster.client_addresses if a != leader]
    members = [leader, *followers]
    cpu_before = [process_cpu_seconds(cluster.processes[a].pid) for a in members]
    counters_before = scrape_counters(leader, ETCD_COUNTERS)
    client_before = time.process_time()
    summary = summarize(asyncio.run(etcd_load(leader, clients, duration)))
    client_cpu = time.process_time() - client_before
    counters = scrape_counters(leader, ETCD_COUNTERS)
    cpu = [process_cpu_seconds(cluster.processes[a].pid) - before
           for a, before in zip(members, cpu_before, strict=True)]
    writes = int(summary["ops"])
    fsyncs = (counters["etcd_disk_wal_fsync_duration_seconds_count"]
              - counters_before["etcd_disk_wal_fsync_duration_seconds_count"])
    committed = (counters["etcd_server_proposals_committed_total"]
                 - counters_before["etcd_server_proposals_committed_total"])
    return Measured(summary, per_write_us(cpu[0], writes),
                    statistics.mean(per_write_us(c, writes) for c in cpu[1:]),
                    per_write_us(client_cpu, writes), None,
                    committed / fsyncs if fsyncs else None)


async def etcd_first_write(addresses: list[str], timeout: float) -> float:
    started = time.perf_counter()
    deadline = started + timeout
    channels = [grpc.aio.insecure_channel(address) for address in addresses]
    try:
        while time.perf_counter() < deadline:
            for channel in channels:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await channel.unary_unary("/etcdserverpb.KV/Put")(
                        encode_put_request(b"failover", b"1"), timeout=0.5)
                    return time.perf_counter() - started
        raise Skipped(f"etcd took no write within {timeout:.0f} s of losing its leader")
    finally:
        for channel in channels:
            await channel.close()


def etcd_failover(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with etcd_cluster() as cluster:
            leader = asyncio.run(etcd_leader(cluster.client_addresses, 30))
            cluster.kill(leader)
            survivors = [a for a in cluster.client_addresses if a != leader]
            times.append(asyncio.run(etcd_first_write(survivors, 30)))
    return times


# ---- PySyncObj ----

def pysyncobj_member(address: str, partners: list[str], journal: str, batched: bool,
                     stop: Any, load: dict[str, Any] | None, results: Any) -> None:
    """One PySyncObj member; with `load`, also the client threads, measured in here."""
    from pysyncobj import SyncObj, SyncObjConf
    from pysyncobj.batteries import ReplDict

    critical = CriticalCounter()
    logging.getLogger("pysyncobj").addHandler(critical)
    logging.getLogger("pysyncobj").propagate = False
    replicated = ReplDict()
    conf = SyncObjConf(journalFile=journal, fullDumpFile=journal + ".dump",
                       appendEntriesUseBatch=batched)
    member = SyncObj(address, partners, conf=conf, consumers=[replicated])
    try:
        if load is not None:
            results.put(("load", pysyncobj_drive(member, replicated, **load)))
        stop.wait()
    finally:
        member.destroy()
        results.put(("critical", critical.count, critical.first))


class CriticalCounter(logging.Handler):
    """Counts PySyncObj's CRITICAL log records (kept out of the table, summed in its note)."""

    def __init__(self) -> None:
        super().__init__(logging.CRITICAL)
        self.count = 0
        self.first = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.first = self.first or record.getMessage()


def pysyncobj_drive(member: Any, replicated: Any, clients: int, duration: float,
                    runs: int) -> list[dict[str, Any]] | str:
    deadline = time.monotonic() + 30
    while member._getLeader() is None:
        if time.monotonic() > deadline:
            return "PySyncObj elected no leader within 30 s"
        time.sleep(0.05)  # PySyncObj offers no election event to wait on
    value = "v" * VALUE_SIZE
    replicated.set("bench-warmup", value, sync=True, timeout=10)
    return [summarize(pysyncobj_run(replicated, clients, duration, value))
            for _ in range(runs)]


def pysyncobj_run(replicated: Any, clients: int, duration: float, value: str) -> LoadResult:
    """`clients` threads, each setting keys back to back (sync: until applied)."""
    latencies = [array("d") for _ in range(clients)]
    failures = [0] * clients
    started = time.perf_counter()
    stop_at = started + duration

    def client(number: int) -> None:
        count = 0
        while (begin := time.perf_counter()) < stop_at:
            count += 1
            try:
                replicated.set(f"bench-{(number * 7919 + count) % KEYS}", value,
                               sync=True, timeout=2.0)
            except Exception:
                failures[number] += 1
                continue
            latencies[number].append(time.perf_counter() - begin)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = LoadResult(elapsed_seconds=time.perf_counter() - started,
                       indefinite_failures=sum(failures))
    for series in latencies:
        total.latencies.extend(series)
    return total


def bench_pysyncobj(duration: float, runs: int) -> list[Row]:
    """PySyncObj either replicates on its 100 ms heartbeat in batches (its default, best for
    throughput) or sends each command at once (best for latency): each row shows the better
    of the two, named in the note."""
    try:
        import pysyncobj  # noqa: F401
    except ImportError as error:
        raise Skipped("PySyncObj is not installed (pip install pysyncobj)") from error
    rows = []
    for clients in CLIENT_COUNTS:
        candidates = []
        for batched in (True, False):
            summaries = pysyncobj_cluster_run(clients, duration, runs, batched)
            note = ("batched on heartbeat" if batched else "unbatched")
            candidates.append(median_row("PySyncObj", clients, summaries,
                                         note=f"{note}; journal via mmap, no fsync per entry"))
        rows.append(max(candidates, key=lambda row: row.writes_per_second))
    return rows


def pysyncobj_cluster_run(clients: int, duration: float, runs: int, batched: bool
                          ) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pysyncobj-bench-") as data_dir:
        ports = free_loopback_ports(3)
        addresses = [f"127.0.0.1:{port}" for port in ports]
        stop = context.Event()
        results = context.Queue()
        members = []
        for index, address in enumerate(addresses):
            load = ({"clients": clients, "duration": duration, "runs": runs}
                    if index == 0 else None)
            members.append(context.Process(
                target=pysyncobj_member,
                args=(address, [a for a in addresses if a != address],
                      str(Path(data_dir) / f"journal-{index}"), batched, stop, load, results),
                daemon=True,
            ))
        for process in members:
            process.start()
        critical = 0
        first_critical = ""
        try:
            kind, outcome = results.get(timeout=60 + runs * (duration + 30))
            assert kind == "load", kind
        finally:
            stop.set()
            for _ in members:
                with contextlib.suppress(queue.Empty):
                    _, count, first = results.get(timeout=15)
                    critical += count
                    first_critical = first_critical or first
            for process in members:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
    if isinstance(outcome, str):
        raise Skipped(outcome)
    summaries: list[dict[str, Any]] = outcome
    if critical:
        print(f"  PySyncObj ({clients} clients, {'batched' if batched else 'unbatched'}) "
              f"logged {critical} CRITICAL records, e.g. {first_critical!r}", flush=True)
    return summaries


# ---- the floor: the RPC layer alone ----

FLOOR_METHODS = ("OpenSession", "Put")


async def queued_rounds(queued: list[T], arrived: asyncio.Event) -> AsyncIterator[list[T]]:
    """Everything queued since the last round, one round after another, as a driver batches:
    what arrives while a round is handled makes the next one, and a lone request goes at once.
    `arrived` is set whenever something is queued."""
    while True:
        await arrived.wait()
        arrived.clear()
        while queued:
            batch = queued[:]
            queued.clear()
            yield batch


# A floor's or a prototype's log: far more than a run writes (a few MB).
PROTOTYPE_LOG_BYTES = 64 << 20


def preallocated_log(directory: str) -> int:
    """A log file of PROTOTYPE_LOG_BYTES written as zeros and synced, so that each fdatasync
    writes data blocks only (as distlab's and etcd's WALs preallocate their segments)."""
    fd, _ = tempfile.mkstemp(prefix="log-", dir=directory)
    zeros = bytes(1 << 20)
    for offset in range(0, PROTOTYPE_LOG_BYTES, len(zeros)):
        os.pwrite(fd, zeros, offset)
    os.fsync(fd)
    return fd


FLOOR_MODES = ("at-once", "batched", "batched-fsync")


def serve_floor(port: int, mode: str = "at-once") -> None:
    """Answer KV OpenSession and Put with empty responses until killed.

    at-once: in the handler itself. batched: the handler waits, as a node's does, for a task
    that answers everything queued since its last round. batched-fsync: that task also
    writes a record per request to a preallocated file and fdatasyncs it on a worker thread
    before answering, as a leader's WAL does. The last two are the least a replicated write
    must spend on one node, with no log, no state machine and no protocol."""
    queued: list[asyncio.Future[bytes]] = []
    arrived = asyncio.Event()

    async def answer(request: bytes, context: Any) -> bytes:
        if mode == "at-once":
            return b""  # an empty OpenSessionResponse or PutResponse: every field at default
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        queued.append(future)
        arrived.set()
        return await future

    async def answer_rounds(fd: int | None) -> None:
        """Answer each round; first write it and fdatasync `fd` on a thread, given a log."""
        offset = 0
        async for batch in queued_rounds(queued, arrived):
            if fd is not None:
                record = bytes(VALUE_SIZE + 20) * len(batch)
                os.pwrite(fd, record, offset)
                offset += len(record)
                await asyncio.to_thread(os.fdatasync, fd)
            for future in batch:
                future.set_result(b"")

    async def main() -> None:
        handler = grpc.method_handlers_generic_handler(
            "distlab.v1.KV",
            {method: grpc.unary_unary_rpc_method_handler(answer) for method in FLOOR_METHODS})
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        with tempfile.TemporaryDirectory(prefix="distlab-floor-") as directory:
            # Only the batched floors answer from rounds, and only one of them writes.
            rounds = (asyncio.create_task(answer_rounds(
                preallocated_log(directory) if mode == "batched-fsync" else None))
                if mode != "at-once" else None)
            await server.start()
            print("serving", flush=True)
            await server.wait_for_termination()
            if rounds is not None:
                rounds.cancel()

    loop.run(main())


def bench_floor(duration: float, runs: int) -> list[Row]:
    (port,) = free_loopback_ports(1)
    server = subprocess.Popen([sys.executable, __file__, "--serve-floor", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "serving":
            raise Skipped("the floor server did not start")
        summaries = [run_bench_kv(["--cluster", f"1=127.0.0.1:{port}"], clients, duration)[0]
                     for clients in CLIENT_COUNTS for _ in range(runs)]
        return [median_row("grpc floor", clients, summaries[i * runs:(i + 1) * runs],
                           "one process, no log, no disk: the RPC layer alone")
                for i, clients in enumerate(CLIENT_COUNTS)]
    finally:
        server.kill()
        server.wait()


# ---- report ----

def distlab_name(groups: int, engine: str = "raft") -> str:
    return " ".join(["distlab", *([engine] if engine != "raft" else []),
                     *([f"G={groups}"] if groups != 1 else [])])


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def median_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def measured_rows(results: dict[tuple[str, int], list[Measured]], notes: dict[str, str]
                  ) -> list[list[str]]:
    rows = []
    for (system, clients), runs in results.items():
        rows.append([
            system, str(clients),
            f"{statistics.median(m.writes_per_second for m in runs):.0f}",
            f"{statistics.median(m.summary['latency_ms']['p50'] for m in runs):.2f}",
            f"{statistics.median(m.summary['latency_ms']['p99'] for m in runs):.2f}",
            fmt(median_of([m.leader_cpu_us for m in runs])),
            fmt(median_of([m.follower_cpu_us for m in runs])),
            fmt(median_of([m.client_cpu_us for m in runs])),
            fmt(median_of([m.entries_per_message for m in runs]), 1),
            fmt(median_of([m.entries_per_fsync for m in runs]), 1),
            notes.get(system, ""),
        ])
    return rows


def ratio_rows(results: dict[tuple[str, int], list[Measured]], baseline: str
               ) -> list[list[str]]:
    """Each system's writes/s over the baseline's in the same pass, and their median."""
    rows = []
    for (system, clients), runs in results.items():
        base = results.get((baseline, clients))
        if system == baseline or not base:
            continue
        ratios = [m.writes_per_second / b.writes_per_second
                  for m, b in zip(runs, base, strict=False) if b.writes_per_second]
        rows.append([system, str(clients), " ".join(f"{r:.2f}" for r in ratios),
                     fmt(statistics.median(ratios) if ratios else None, 2)])
    return rows


def run_passes(builds: list[Build], with_etcd: bool, duration: float, runs: int,
               processes: int) -> dict[tuple[str, int], list[Measured]]:
    """`runs` passes; each measures every build on a fresh cluster, then etcd on a fresh
    cluster, at every client count: a change in the machine's speed touches all alike, and
    each pass gives its own ratio to etcd."""
    systems = [b.name for b in builds] + (["etcd"] if with_etcd else [])
    results: dict[tuple[str, int], list[Measured]] = {
        (system, clients): [] for system in systems for clients in CLIENT_COUNTS}
    for run in range(runs):
        for build in builds:
            print(f"  pass {run + 1}/{runs}: {build.name}", flush=True)
            with distlab_cluster(build=build) as cluster_file:
                ensure_distlab_serves(cluster_file)
                for clients in CLIENT_COUNTS:
                    results[build.name, clients].append(measure_distlab(
                        cluster_file, clients, duration, processes, build))
        if with_etcd:
            print(f"  pass {run + 1}/{runs}: etcd", flush=True)
            with etcd_cluster() as cluster:
                for clients in CLIENT_COUNTS:
                    results["etcd", clients].append(measure_etcd(cluster, clients, duration))
    return results


def report_failover(systems: list[str], engines: list[str], runs: int, quiet_seconds: float
                    ) -> None:
    rows = []
    if "distlab" in systems:
        timings: list[tuple[str, tuple[tuple[str, str], ...]]] = [
            ("", ()), (" RAFT_TICK_MS=10", (("RAFT_TICK_MS", "10"),))]
        for engine, (suffix, env) in itertools.product(engines, timings):
            name = distlab_name(1, engine) + suffix
            print(f"\nfailover of {name} ...", flush=True)
            try:
                times, false_elections = distlab_failover(
                    Build(name, engine=engine, env=env), runs, quiet_seconds)
            except Skipped as error:
                print(f"{name} failover: skipped: {error}", flush=True)
                continue
            rows.append([name, f"{statistics.median(times) * 1000:.0f}",
                         " ".join(f"{t * 1000:.0f}" for t in times),
                         f"{false_elections} in {runs * quiet_seconds:.0f} s"])
    if "etcd" in systems:
        print("\nfailover of etcd ...", flush=True)
        try:
            times = etcd_failover(runs)
            rows.append(["etcd", f"{statistics.median(times) * 1000:.0f}",
                         " ".join(f"{t * 1000:.0f}" for t in times), "-"])
        except Skipped as error:
            print(f"etcd failover: skipped: {error}", flush=True)
    if rows:
        print("\nleader killed with SIGKILL: time to the first acknowledged write; false "
              "elections: terms begun while nothing failed, under one writer")
        print(format_table(("system", "median ms", "runs ms", "false elections"), rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--runs", type=int, default=3,
                        help="interleaved passes over every system (3)")
    parser.add_argument("--processes", type=int, default=1,
                        help="load processes for distlab's 64-client runs (1)")
    parser.add_argument("--systems", default="distlab,etcd,pysyncobj,floor",
                        help="comma-separated subset of distlab,etcd,pysyncobj,floor")
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--floor-mode", choices=FLOOR_MODES, default="at-once",
                        help=argparse.SUPPRESS)
    parser.add_argument("--no-failover", action="store_true", help="skip the failover runs")
    parser.add_argument("--failovers", type=int, default=5,
                        help="fresh clusters per failover configuration (5)")
    parser.add_argument("--quiet-seconds", type=float, default=10.0,
                        help="seconds of fault-free writes before each failover, to count "
                        "false elections (10)")
    parser.add_argument("--groups", default="1,3",
                        help="group counts to measure distlab with, interleaved (1,3)")
    parser.add_argument("--engines", default="raft",
                        help="consensus engines to measure distlab with, interleaved: raft, "
                        "paxos or both (raft)")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also measure the distlab installed for this interpreter (an older "
                        "build, one group), interleaved with this one, as 'distlab before'")
    args = parser.parse_args()
    if args.serve_floor is not None:
        serve_floor(args.serve_floor, args.floor_mode)
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - {"distlab", "etcd", "pysyncobj", "floor"}
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or set(engines) - {"raft", "paxos"}:
        parser.error(f"--engines: expected raft, paxos or both, got {args.engines!r}")
    builds = ([Build(distlab_name(int(g), engine), groups=int(g), engine=engine)
               for engine in engines for g in args.groups.split(",")]
              if "distlab" in systems else [])
    if args.before and builds:
        builds.insert(0, Build("distlab before", python=args.before))
    with_etcd = "etcd" in systems
    if with_etcd and shutil.which("etcd") is None and not Path("/usr/bin/etcd").exists():
        print("etcd: skipped: etcd is not installed (apt-get install etcd-server)")
        with_etcd = False

    print("measuring " + ", ".join([b.name for b in builds] + (["etcd"] if with_etcd else []))
          + f" in {args.runs} interleaved passes ...", flush=True)
    try:
        results = run_passes(builds, with_etcd, args.duration, args.runs, args.processes)
    except Skipped as error:
        print(f"skipped: {error}", flush=True)
        results = {}
    notes = {b.name: f"ENGINE={b.engine} GROUPS={b.groups}" for b in builds}
    notes["etcd"] = "entries/msg: etcd does not count messages"
    others: list[Row] = []
    for system, bench in (("pysyncobj", bench_pysyncobj), ("floor", bench_floor)):
        if system in systems:
            print(f"measuring {system} ...", flush=True)
            try:
                others.extend(bench(args.duration, args.runs))
            except Skipped as error:
                print(f"{system}: skipped: {error}", flush=True)

    print(f"\nwrites of {VALUE_SIZE}-byte values, 3 members on loopback, medians of "
          f"{args.runs} passes of {args.duration:g} s; CPU is user + system per "
          "acknowledged write")
    print(format_table(
        ("system", "clients", "writes/s", "p50 ms", "p99 ms", "leader µs", "follower µs",
         "client µs", "entries/msg", "entries/fsync", "note"),
        measured_rows(results, notes)
        + [[r.system, str(r.clients), f"{r.writes_per_second:.0f}", f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}", "-", "-", "-", "-", "-", r.note] for r in others],
    ))
    if with_etcd and builds:
        print("\nwrites/s over etcd's in the same pass")
        print(format_table(("system", "clients", "each pass", "median"),
                           ratio_rows(results, "etcd")))
    if len(builds) > 1:
        print("\nwrites/s over distlab's (Raft, GROUPS=1) in the same pass")
        print(format_table(("system", "clients", "each pass", "median"),
                           [row for row in ratio_rows(results, "distlab")
                            if row[0] != "etcd"]))
    if not args.no_failover:
        report_failover(systems, engines, args.failovers, args.quiet_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
