"""Addresses and cluster lists, as nodes, clients and tools read them from settings and flags.

Every problem is a `ConfigError` whose message is one line naming the setting at fault, so a
command can print it and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NodeId

# A bare id `N` in a cluster list stands for the compose service `node<N>` on this port.
DEFAULT_PEER_PORT = 7000


class ConfigError(ValueError):
    """A configuration problem, described in one line."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, what: str) -> Address:
    """`host:port` (or `[v6]:port`) with a port in 1..65535."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what}: expected host:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what}: port must be a number in 1..65535, got {text!r}")
    return Address(host, int(port_text))


def parse_node_id(text: str, what: str) -> NodeId:
    text = text.strip()
    if not text.isdigit() or int(text) == 0:
        raise ConfigError(f"{what}: node id must be a positive integer, got {text!r}")
    return NodeId(int(text))


def _entries(text: str, what: str) -> list[str]:
    if not text.strip():
        raise ConfigError(f"{what} is empty: expected 1=host:port,2=host:port,... or 1,2,3")
    entries = [item.strip() for item in text.split(",")]
    if not all(entries):
        raise ConfigError(f"{what}: empty entry in {text!r}")
    return entries


def parse_cluster_nodes(text: str, what: str = "CLUSTER_NODES") -> dict[NodeId, Address]:
    """`1=host:port,2=host:port`; a bare id `N` means `node<N>:7000` (the compose service name).

    `what` names the setting in error messages.
    """
    cluster: dict[NodeId, Address] = {}
    seen: dict[Address, NodeId] = {}
    for item in _entries(text, what):
        id_text, sep, address_text = item.partition("=")
        node_id = parse_node_id(id_text, f"{what} entry {item!r}")
        address = (
            parse_address(address_text, f"{what} entry {item!r}")
            if sep
            else Address(f"node{node_id}", DEFAULT_PEER_PORT)
        )
        if node_id in cluster:
            raise ConfigError(f"{what}: node {node_id} is listed twice")
        if address in seen:
            raise ConfigError(
                f"{what}: duplicate address {address} for nodes {seen[address]} and {node_id}"
            )
        cluster[node_id] = address
        seen[address] = node_id
    return cluster


def parse_cluster_list(text: str, what: str) -> dict[NodeId, Address] | list[Address]:
    """A cluster as a client names it: `1=host:port,...` (or bare ids, as CLUSTER_NODES) gives
    node id -> address; plain `host:port,...` gives the addresses alone, whose ids the caller
    learns from the nodes themselves (as etcdctl's --endpoints)."""
    entries = _entries(text, what)
    named = ["=" in item or item.isdigit() for item in entries]
    if all(named):
        return parse_cluster_nodes(text, what)
    if any(named):
        raise ConfigError(f"{what}: mixes id=host:port and plain host:port entries in {text!r}")
    addresses: list[Address] = []
    for item in entries:
        address = parse_address(item, f"{what} entry {item!r}")
        if address in addresses:
            raise ConfigError(f"{what}: address {address} is listed twice")
        addresses.append(address)
    return addresses
