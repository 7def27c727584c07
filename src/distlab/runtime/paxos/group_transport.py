"""Multi-Paxos messages on the node's peer transport: the codec the generic group transport
(`runtime.host.group_transport`) uses for a Paxos group."""

from __future__ import annotations

from distlab.protocols import multipaxos
from distlab.runtime.grpc import paxos_codec
from distlab.runtime.host.group_transport import PeerCodec

PAXOS_SERVICE = "paxos"

PAXOS_PEER_CODEC = PeerCodec(PAXOS_SERVICE, paxos_codec.encode, paxos_codec.decode,
                             multipaxos.InstallSnapshot)
