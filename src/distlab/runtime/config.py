"""Node configuration from environment variables and flags (flags win).

Every problem is reported as a `ConfigError` whose message is one line naming the variable or
flag at fault, so `distlab node` can print it and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from distlab.core.ids import NodeId
from distlab.core.truetime import DEFAULT_EPSILON, Epsilon, parse_epsilon
from distlab.telemetry.tracing import sampler_from_environment

# Addresses and cluster lists are parsed as every client parses them; the names are
# re-exported because a node's settings are where most callers meet them.
from distlab.wire.addresses import DEFAULT_PEER_PORT
from distlab.wire.addresses import Address as Address
from distlab.wire.addresses import ConfigError as ConfigError
from distlab.wire.addresses import parse_address as parse_address
from distlab.wire.addresses import parse_cluster_nodes as parse_cluster_nodes
from distlab.wire.addresses import parse_node_id as parse_node_id

DEFAULT_LISTEN_ADDR = f"0.0.0.0:{DEFAULT_PEER_PORT}"
DEFAULT_METRICS_ADDR = "0.0.0.0:9000"
# Every group costs a driver task and a share of every peer stream; past a few hundred the
# per-group timers alone would busy a node.
MAX_GROUPS = 256
ENGINES = ("raft", "paxos")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: NodeId
    cluster: Mapping[NodeId, Address]
    listen: Address
    metrics: Address
    data_dir: Path
    otlp_endpoint: str | None
    # Start as a new member of an existing cluster: wait to be added instead of bootstrapping.
    join: bool = False
    raft_tick_ms: int = 50
    raft_election_ticks: int = 10
    snapshot_entries: int = 4096
    # UNSAFE, for testing the tester only (DISTLAB_UNSAFE_STALE_READS=1): Get skips the read
    # barrier and answers from the local state machine on any member, leader or not, so
    # reads may be stale. It exists so `distlab test` can be shown to catch a broken store.
    unsafe_stale_reads: bool = False
    # The number of KV shards, each a replicated group over all the nodes; every node of a
    # cluster must run the same value (a peer with another is refused at the handshake).
    groups: int = 1
    # The consensus engine of every replicated group.
    engine: str = "raft"
    # Where to append every peer message this node sends and receives, with its vector
    # clock, in ShiViz's log format (VCLOCK_LOG); None: no log.
    vclock_log: Path | None = None
    # TrueTime's uncertainty bound (TRUETIME_EPSILON_MS), and an offset added to this node's
    # wall clock for experiments (CLOCK_SKEW_MS), refused beyond epsilon unless
    # CLOCK_SKEW_UNSAFE=1.
    truetime_epsilon: Epsilon = DEFAULT_EPSILON
    clock_skew_ms: float = 0.0
    # UNSAFE, for testing the tester only (DISTLAB_UNSAFE_DIRTY_READS=1): the chain replica
    # answers CRAQ reads of dirty keys with its newest version instead of asking the tail.
    unsafe_dirty_reads: bool = False
    # UNSAFE, for testing the tester only (DISTLAB_UNSAFE_NO_COMMIT_WAIT=1): transactions
    # over groups report and send their commits without waiting out TrueTime's uncertainty.
    unsafe_no_commit_wait: bool = False
    # Transactions over groups take Spanner's timestamps from TrueTime, with commit wait and
    # snapshot reads (TXN_TIMESTAMPS=truetime, the default), or none (off: plain 2PC over
    # groups, to measure what TrueTime costs).
    txn_timestamps: bool = True

    @property
    def peers(self) -> dict[NodeId, Address]:
        """Every member but this one."""
        return {node: address for node, address in self.cluster.items() if node != self.node_id}


def load_node_config(
    env: Mapping[str, str], overrides: Mapping[str, str | None] | None = None
) -> NodeConfig:
    """Build a node's configuration from `env`, with non-None `overrides` (flags) taking precedence.

    Keys are the variable names of the configuration table: NODE_ID, CLUSTER_NODES,
    LISTEN_ADDR, METRICS_ADDR, DATA_DIR, OTLP_ENDPOINT, OTEL_TRACES_SAMPLER, GROUPS, ENGINE, ...
    """
    merged = dict(env)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = value

    node_text = merged.get("NODE_ID")
    if node_text is None or not node_text.strip():
        raise ConfigError("NODE_ID is required (set NODE_ID or pass --node-id)")
    node_id = parse_node_id(node_text, "NODE_ID")

    cluster_text = merged.get("CLUSTER_NODES")
    if cluster_text is None:
        raise ConfigError("CLUSTER_NODES is required (set CLUSTER_NODES or pass --cluster-nodes)")
    cluster = parse_cluster_nodes(cluster_text)
    if node_id not in cluster:
        members = ",".join(str(n) for n in sorted(cluster))
        raise ConfigError(f"NODE_ID {node_id} is not a member of CLUSTER_NODES ({members})")

    listen = parse_address(merged.get("LISTEN_ADDR") or DEFAULT_LISTEN_ADDR, "LISTEN_ADDR")
    metrics = parse_address(merged.get("METRICS_ADDR") or DEFAULT_METRICS_ADDR, "METRICS_ADDR")
    wildcard = "0.0.0.0" in (listen.host, metrics.host)
    if listen.port == metrics.port and (listen.host == metrics.host or wildcard):
        raise ConfigError(f"LISTEN_ADDR and METRICS_ADDR both use {listen.host}:{listen.port}")
    data_dir = Path(merged.get("DATA_DIR") or f"./data/node-{node_id}")
    otlp = (merged.get("OTLP_ENDPOINT") or "").strip() or None
    # Checked here so a bad value stops the node before it opens anything; setup_tracing
    # reads the same variables from the environment when the node starts.
    sampler_from_environment(merged)
    join = parse_flag(merged.get("JOIN", ""), "JOIN")
    tick_ms = parse_positive(merged.get("RAFT_TICK_MS"), "RAFT_TICK_MS", 50)
    election_ticks = parse_positive(merged.get("RAFT_ELECTION_TICKS"), "RAFT_ELECTION_TICKS", 10)
    if election_ticks < 3:
        raise ConfigError(f"RAFT_ELECTION_TICKS must be at least 3, got {election_ticks}")
    snapshot_entries = parse_positive(merged.get("SNAPSHOT_ENTRIES"), "SNAPSHOT_ENTRIES", 4096)
    stale_reads = parse_flag(merged.get("DISTLAB_UNSAFE_STALE_READS", ""),
                             "DISTLAB_UNSAFE_STALE_READS")
    groups = parse_positive(merged.get("GROUPS"), "GROUPS", 1)
    if groups > MAX_GROUPS:
        raise ConfigError(f"GROUPS must be at most {MAX_GROUPS}, got {groups}")
    engine = (merged.get("ENGINE") or "raft").strip().lower()
    if engine not in ENGINES:
        raise ConfigError(f"ENGINE: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if join and engine != "raft":
        raise ConfigError(f"JOIN: ENGINE={engine} groups have fixed members; only raft "
                          "groups take new members")
    vclock_text = (merged.get("VCLOCK_LOG") or "").strip()
    vclock_log = Path(vclock_text) if vclock_text else None
    epsilon, skew_ms = parse_truetime(merged)
    dirty_reads = parse_flag(merged.get("DISTLAB_UNSAFE_DIRTY_READS", ""),
                             "DISTLAB_UNSAFE_DIRTY_READS")
    no_commit_wait = parse_flag(merged.get("DISTLAB_UNSAFE_NO_COMMIT_WAIT", ""),
                                "DISTLAB_UNSAFE_NO_COMMIT_WAIT")
    timestamps_text = (merged.get("TXN_TIMESTAMPS") or "truetime").strip().lower()
    if timestamps_text not in ("truetime", "off"):
        raise ConfigError(f"TXN_TIMESTAMPS: expected truetime or off, got {timestamps_text!r}")
    return NodeConfig(node_id, cluster, listen, metrics, data_dir, otlp, join, tick_ms,
                      election_ticks, snapshot_entries, stale_reads, groups, engine,
                      vclock_log=vclock_log, truetime_epsilon=epsilon, clock_skew_ms=skew_ms,
                      unsafe_dirty_reads=dirty_reads, unsafe_no_commit_wait=no_commit_wait,
                      txn_timestamps=timestamps_text == "truetime")


def parse_truetime(merged: Mapping[str, str]) -> tuple[Epsilon, float]:
    """TRUETIME_EPSILON_MS and CLOCK_SKEW_MS, checked against each other: a clock off by more
    than the smallest epsilon makes TrueTime's intervals miss the true time, which only
    CLOCK_SKEW_UNSAFE=1 allows (to show what breaks)."""
    epsilon_text = (merged.get("TRUETIME_EPSILON_MS") or "").strip()
    try:
        epsilon = parse_epsilon(epsilon_text) if epsilon_text else DEFAULT_EPSILON
    except ValueError as error:
        raise ConfigError(f"TRUETIME_EPSILON_MS: {error}") from None
    skew_text = (merged.get("CLOCK_SKEW_MS") or "").strip()
    try:
        skew_ms = float(skew_text) if skew_text else 0.0
    except ValueError:
        skew_ms = math.nan
    if not math.isfinite(skew_ms):
        raise ConfigError(f"CLOCK_SKEW_MS: expected a number of milliseconds (negative: "
                          f"behind), got {skew_text!r}")
    unsafe = parse_flag(merged.get("CLOCK_SKEW_UNSAFE", ""), "CLOCK_SKEW_UNSAFE")
    if abs(skew_ms) > epsilon.low_ms and not unsafe:
        raise ConfigError(
            f"CLOCK_SKEW_MS {skew_ms:g} is beyond TRUETIME_EPSILON_MS ({epsilon.describe()}): "
            f"TrueTime's intervals would miss the true time; set CLOCK_SKEW_UNSAFE=1 to run "
            f"so anyway")
    return epsilon, skew_ms


def parse_flag(text: str, what: str) -> bool:
    value = text.strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{what}: expected true or false, got {text!r}")


def parse_positive(text: str | None, what: str, default: int) -> int:
    if text is None or not text.strip():
        return default
    if not text.strip().isdigit() or int(text) == 0:
        raise ConfigError(f"{what}: expected a positive integer, got {text!r}")
    return int(text)
