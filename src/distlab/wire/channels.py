"""Client channel settings shared by every caller of a distlab server.

Channels reconnect by themselves; the backoff is capped low so a restarted server is reached
again within about a second rather than after gRPC's default two-minute ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from distlab.wire.addresses import Address

CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Keepalive pings let a call to a silently vanished peer (SIGKILL, pulled cable) fail fast.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 3_000),
)


def open_channel(address: Address | str, interceptors: Sequence[Any] = ()) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        str(address), options=list(CHANNEL_OPTIONS), interceptors=list(interceptors)
    )
