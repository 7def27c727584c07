"""The chain replica's ports in a node: its messages on the peer transport, and the master on
group 0 (this node's member of it, or the group's leader over gRPC). Its storage is in
`storage.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import grpc

from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown
from distlab.proto import chain_pb2, chain_pb2_grpc
from distlab.protocols.chain import ChainConfig, ChainMaster, StateTransfer
from distlab.runtime.grpc import chain_codec
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.host.group_transport import PeerCodec
from distlab.runtime.host.machine import chain_master_command

CHAIN_SERVICE = "chain"
# The chain's envelopes travel as group 0's of the "chain" service.
CHAIN_GROUP = 0
CHAIN_PEER_CODEC = PeerCodec(CHAIN_SERVICE, chain_codec.encode, chain_codec.decode,
                             StateTransfer)
FORWARD_SECONDS = 1.0


class NodeMasterPort:
    """Implements `MasterPort` over this node's group-0 driver: a command is proposed here when
    this node leads group 0, else sent to the leader's Chain.Submit."""

    def __init__(self, node_id: NodeId, group0: Any, channels: PeerChannels) -> None:
        self._node_id = node_id
        self._group0 = group0
        self._channels = channels

    @property
    def _master(self) -> ChainMaster:
        return cast(ChainMaster, self._group0.machine.chain_master)

    async def submit(self, command: bytes) -> bytes:
        try:
            result: bytes = await self._group0.propose_envelope(chain_master_command(command))
            return result
        except NotLeader as error:
            leader = error.leader_id
            if not leader or leader == self._node_id or leader not in self._channels.peers:
                raise
            stub = chain_pb2_grpc.ChainStub(self._channels.get(leader))
            try:
                response = await stub.Submit(chain_pb2.ChainSubmitRequest(command=command),
                                             timeout=FORWARD_SECONDS)
            except grpc.aio.AioRpcError as rpc_error:
                raise OutcomeUnknown(f"node {leader}: {rpc_error.details()}") from rpc_error
            return response.result

    def local_config(self) -> ChainConfig | None:
        return self._master.config

    def leads(self) -> bool:
        return bool(self._group0.status().role == "leader")

    def renewals(self) -> Mapping[NodeId, int]:
        return self._master.renewals
