"""What clients and servers share: addresses and cluster lists, channel options, metadata
keys, the encoding of NOT_LEADER, and which group a key belongs to.

Clients import this package, never `distlab.runtime`.
"""

from distlab.wire.addresses import (
    Address,
    ConfigError,
    parse_address,
    parse_cluster_list,
    parse_cluster_nodes,
)
from distlab.wire.channels import CHANNEL_OPTIONS, open_channel
from distlab.wire.not_leader import NotLeaderHint, RpcStatus, decode_not_leader, encode_not_leader
from distlab.wire.sharding import group_of

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
