"""Channel settings shared by every caller of a distlab server, and the keepalive policy
its servers enforce, kept together so that the two agree.

Channels reconnect by themselves; the backoff is capped low so a restarted server is reached
again within about a second rather than after gRPC's default two-minute ceiling.

Keepalive pings let a call to a silently vanished peer (SIGKILL, pulled cable) fail fast.
A gRPC server counts a ping that comes sooner than it allows (five minutes by default, when
it has sent nothing since the last one) as a strike, and after two strikes closes the
connection with GOAWAY `too_many_pings`. A quiet call (a peer stream between two followers,
a request waiting on a stuck group) sees exactly that: pings every ten seconds and nothing
sent back. So servers accept pings at half the interval clients send them, with or without
calls in flight, and clients keep pinging a connection that carries no data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from distlab.wire.addresses import Address

KEEPALIVE_TIME_MS = 10_000
KEEPALIVE_TIMEOUT_MS = 3_000

CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    # By default a client stops pinging after two pings with no data of its own to send,
    # which would leave a quiet stream to a dead peer undetected.
    ("grpc.http2.max_pings_without_data", 0),
)

# What every distlab server allows its clients (runtime/server.py adds these).
SERVER_KEEPALIVE_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
    ("grpc.keepalive_permit_without_calls", 1),
)


def open_channel(address: Address | str, interceptors: Sequence[Any] = (),
                 options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel with CHANNEL_OPTIONS, of which `options` replace those of the same name."""
    merged = dict(CHANNEL_OPTIONS)
    merged.update(options)
    return grpc.aio.insecure_channel(
        str(address), options=list(merged.items()), interceptors=list(interceptors)
    )
