"""What clients and servers share: addresses and cluster lists, channel options, metadata
keys, the encoding of NOT_LEADER, and which group a key belongs to.

Clients import this package, never `distlab.runtime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distlab.wire.addresses import (
    Address,
    ConfigError,
    parse_address,
    parse_cluster_list,
    parse_cluster_nodes,
)
from distlab.wire.sharding import group_of

if TYPE_CHECKING:
    from distlab.wire.channels import CHANNEL_OPTIONS, open_channel
    from distlab.wire.not_leader import (
        NotLeaderHint,
        RpcStatus,
        decode_not_leader,
        encode_not_leader,
    )

# Names whose modules import grpc, loaded on first use: a process that needs only addresses
# (`distlab mr run` before it has started its processes) is spared importing grpc.
_GRPC_NAMES = {
    "CHANNEL_OPTIONS": "channels",
    "open_channel": "channels",
    "NotLeaderHint": "not_leader",
    "RpcStatus": "not_leader",
    "decode_not_leader": "not_leader",
    "encode_not_leader": "not_leader",
}

__all__ = [
    "CHANNEL_OPTIONS",
    "Address",
    "ConfigError",
    "NotLeaderHint",
    "RpcStatus",
    "decode_not_leader",
    "encode_not_leader",
    "group_of",
    "open_channel",
    "parse_address",
    "parse_cluster_list",
    "parse_cluster_nodes",
]



def __getattr__(name: str) -> Any:
    module = _GRPC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
