"""Raft's messages on the node's peer transport: the codec the generic group transport
(`runtime.host.group_transport`) uses for a Raft group."""

from __future__ import annotations

from distlab.protocols import raft
from distlab.runtime.grpc import raft_codec
from distlab.runtime.host.group_transport import PeerCodec

RAFT_SERVICE = "raft"

RAFT_PEER_CODEC = PeerCodec(RAFT_SERVICE, raft_codec.encode, raft_codec.decode,
                            raft.InstallSnapshot)
