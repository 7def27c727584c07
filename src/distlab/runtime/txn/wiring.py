"""A node's transaction roles: as one participant (the core on its WAL records, its driver,
its peer messages), and its groups' participants where it leads them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from distlab.apps.kv import KVStateMachine
from distlab.apps.txn_log import TxnLogMachine
from distlab.core.ids import NodeId
from distlab.core.truetime import TrueTime
from distlab.protocols.txn import Message, PlantedBugs, TxnConfig, TxnNode
from distlab.runtime.config import NodeConfig
from distlab.runtime.grpc.peer_codec import MalformedMessage
from distlab.runtime.host.group_transport import GroupReceiver, GroupTransport
from distlab.runtime.host.ports import Clock, LoopClock
from distlab.runtime.host.sync import SharedSync
from distlab.runtime.peer import MalformedPayload, PeerRouter, PeerTransport
from distlab.runtime.txn import groups as txn_groups
from distlab.runtime.txn.codec import TXN_PEER_CODEC, decode
from distlab.runtime.txn.codec import encode as encode_message
from distlab.runtime.txn.driver import DEFAULT_TICK_SECONDS, TxnDriver
from distlab.runtime.txn.groups import GroupParticipants, LedGroup, participant_id
from distlab.runtime.txn.storage import NODE_INSTANCE, TxnWalStorage
from distlab.storage import NodeStorage
from distlab.storage.log_store import FileSharedLog
from distlab.wire.sharding import participant_of

log = logging.getLogger(__name__)
# The exit status of a process killed at an injected crash point.
CRASH_EXIT_STATUS = 70


def crash_now(point: str) -> None:
    """Die at once, as a killed process does: no clean-up, nothing more written."""
    log.error("transaction fault %s: crashing now", point)
    logging.shutdown()
    os._exit(CRASH_EXIT_STATUS)


def build_txn(config: NodeConfig, stores: NodeStorage, peer: PeerTransport, router: PeerRouter,
              on_failure: Callable[[BaseException], None],
              crash: Callable[[str], None] = crash_now,
              isolate: Callable[[], None] | None = None) -> TxnDriver:
    """Raises CorruptTxnRecord when a transaction record cannot be read."""
    shared_log = stores.shared_log
    assert isinstance(shared_log, FileSharedLog), "the transaction log lives in the file WAL"
    storage = TxnWalStorage(shared_log, SharedSync(stores.sync, lambda: shared_log.written_seq))
    nodes = sorted(config.cluster)

    def owner(key: str) -> NodeId:
        return NodeId(participant_of(key, nodes))

    core = TxnNode(TxnConfig(node_id=config.node_id, owner=owner), storage.recovered())
    transport = GroupTransport(peer, TXN_PEER_CODEC, NODE_INSTANCE,
                               report_snapshot=lambda node, accepted: None)
    driver = TxnDriver(node_id=config.node_id, core=core, storage=storage,
                       transport=transport, clock=LoopClock(),
                       tick_seconds=DEFAULT_TICK_SECONDS, on_failure=on_failure, crash=crash,
                       isolate=isolate)
    GroupReceiver(config.node_id, TXN_PEER_CODEC, driver.deliver).register(router,
                                                                           NODE_INSTANCE)
    return driver


def build_group_participants(config: NodeConfig, groups: Sequence[LedGroup],
                             shards: Sequence[KVStateMachine],
                             records: Sequence[TxnLogMachine], peer: PeerTransport,
                             router: PeerRouter, clock: Clock, truetime: TrueTime,
                             crash: Callable[[str], None] = crash_now) -> GroupParticipants:
    """The participants of the node's groups, their messages routed through `router`, with
    Spanner's timestamps from `truetime` unless TXN_TIMESTAMPS is off."""
    if config.unsafe_no_commit_wait:
        log.warning("DISTLAB_UNSAFE_NO_COMMIT_WAIT is set: transactions over groups report "
                    "their commits without commit wait (for testing the tester only)")

    def send(member: NodeId, group: int, message: Message, context: Any) -> None:
        peer.send(member, txn_groups.SERVICE, group, encode_message(message), context)

    participants = GroupParticipants(
        node_id=config.node_id, groups=groups, shards=shards, records=records, send=send,
        clock=clock, crash=crash, truetime=truetime if config.txn_timestamps else None,
        planted_bugs=PlantedBugs(no_commit_wait=config.unsafe_no_commit_wait))
    for group in range(len(groups)):
        receive = _GroupMessages(participants, group)
        router.register(txn_groups.SERVICE, group, receive.deliver, receive.deliver_bulk)
    return participants


class _GroupMessages:
    """The receiving side of group `group`'s participant: messages come from whichever
    member leads the sender's group, so only the recipient is checked."""

    def __init__(self, participants: GroupParticipants, group: int) -> None:
        self._participants = participants
        self._group = group

    def deliver(self, sender: NodeId, payload: bytes) -> bool:
        try:
            message = decode(payload)
        except MalformedMessage as error:
            raise MalformedPayload(str(error)) from error
        if message.recipient != participant_id(self._group):
            raise MalformedPayload(f"a message for participant {message.recipient} sent to "
                                   f"group {self._group}'s")
        return self._participants.deliver(self._group, message)

    def deliver_bulk(self, sender: NodeId, payload: bytes) -> bool:
        raise MalformedPayload("transaction messages are never bulk transfers")
