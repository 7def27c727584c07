"""One long-lived gRPC channel per peer, reused by every call to that peer.

The channels are those every client opens (distlab.wire.channels), so a restarted peer is
reached again within about a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from distlab.core.ids import NodeId
from distlab.runtime.config import Address
from distlab.wire.channels import open_channel


class PeerChannels:
    """Lazily opened channels keyed by node id, closed together."""

    def __init__(self, peers: Mapping[NodeId, Address], interceptors: Sequence[Any] = ()) -> None:
        self._peers: dict[NodeId, Address | str] = dict(peers)
        self._interceptors = list(interceptors)
        self._channels: dict[NodeId, grpc.aio.Channel] = {}

    @property
    def peers(self) -> Mapping[NodeId, Address | str]:
        return self._peers

    def add(self, node_id: NodeId, address: Address | str) -> None:
        """Learn (or change) a member's address; a changed address gets a fresh channel."""
        if self._peers.get(node_id) == address:
            return
        self._peers[node_id] = address
        stale = self._channels.pop(node_id, None)
        if stale is not None:
            # Closing is asynchronous; the old channel is no longer handed out either way.
            asyncio.get_running_loop().create_task(stale.close(grace=None))

    def get(self, node_id: NodeId) -> grpc.aio.Channel:
        channel = self._channels.get(node_id)
        if channel is None:
            channel = open_channel(self._peers[node_id], self._interceptors)
            self._channels[node_id] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close(grace=None)
