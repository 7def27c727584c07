"""Finding a cluster's nodes from --cluster, DISTLAB_CLUSTER or a cluster.json file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from distlab.cli.common import UsageError
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import CLUSTER_FILE, ClusterFileError
from distlab.ops.local_cluster import read_cluster_file as read_description
from distlab.ops.status import identify
from distlab.runtime import loop
from distlab.wire.addresses import Address, ConfigError, parse_address, parse_cluster_list

DEFAULT_CLUSTER_FILE = Path("data") / CLUSTER_FILE
IDENTIFY_DEADLINE_SECONDS = 2.0

Cluster = dict[NodeId, Address] | list[Address]
"""Node id -> address, or plain addresses whose ids only the nodes know."""


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--cluster", metavar="ADDRS",
        help="1=host:port,2=host:port,... or host:port,host:port,... (default: "
        "$DISTLAB_CLUSTER, else data/cluster.json)",
    )
    group.add_argument("--cluster-file", metavar="FILE", type=Path,
                       help="a cluster.json written by `distlab up`")


def resolve_cluster(cluster: str | None, cluster_file: Path | None) -> Cluster:
    """The cluster, from the first of: --cluster, --cluster-file, $DISTLAB_CLUSTER,
    data/cluster.json. A plain address list stays a list (see `resolve_members`)."""
    what = "--cluster"
    if cluster is None and cluster_file is None:
        cluster = os.environ.get("DISTLAB_CLUSTER") or None
        what = "DISTLAB_CLUSTER"
        if cluster is None:
            cluster_file = DEFAULT_CLUSTER_FILE
            if not cluster_file.exists():
                raise UsageError(
                    "no cluster given: pass --cluster ADDRS or --cluster-file FILE, set "
                    "DISTLAB_CLUSTER, or run `distlab up` here so data/cluster.json exists"
                )
    if cluster is not None:
        try:
            return parse_cluster_list(cluster, what)
        except ConfigError as error:
            raise UsageError(str(error)) from error
    assert cluster_file is not None
    return read_cluster_file(cluster_file)


def resolve_members(cluster: str | None, cluster_file: Path | None) -> dict[NodeId, Address]:
    """As `resolve_cluster`, with every node's id: a plain address list is completed by
    asking each node who it is (a node that does not answer is a usage error)."""
    resolved = resolve_cluster(cluster, cluster_file)
    if isinstance(resolved, dict):
        return resolved
    try:
        learned = loop.run(identify(resolved, IDENTIFY_DEADLINE_SECONDS))
    except LookupError as error:
        raise UsageError(str(error)) from error
    return {node: parse_address(address, "node address") for node, address in learned.items()}


def read_cluster_file(path: Path) -> dict[NodeId, Address]:
    try:
        document = read_description(path)
        nodes = {
            NodeId(int(entry["id"])): parse_address(str(entry["address"]), f"{path}")
            for entry in document["nodes"]
        }
    except ClusterFileError as error:
        raise UsageError(str(error)) from error
    except (ValueError, KeyError, TypeError, ConfigError) as error:
        raise UsageError(f"{path} is not a cluster file of `distlab up`: {error}") from error
    if not nodes:
        raise UsageError(f"{path} lists no nodes")
    return nodes


def cluster_file_in_use(cluster: str | None, cluster_file: Path | None) -> Path | None:
    """The cluster file `resolve_cluster` reads for these arguments, or None when the
    cluster comes from --cluster or $DISTLAB_CLUSTER."""
    if cluster is not None:
        return None
    if cluster_file is not None:
        return cluster_file
    return None if os.environ.get("DISTLAB_CLUSTER") else DEFAULT_CLUSTER_FILE
