"""A node's transaction roles: the core on its WAL records, its driver, its peer messages."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from distlab.core.ids import NodeId
from distlab.protocols.txn import TxnConfig, TxnNode
from distlab.runtime.config import NodeConfig
from distlab.runtime.host.group_transport import GroupReceiver, GroupTransport
from distlab.runtime.host.ports import LoopClock
from distlab.runtime.host.sync import SharedSync
from distlab.runtime.peer import PeerRouter, PeerTransport
from distlab.runtime.txn.codec import TXN_PEER_CODEC
from distlab.runtime.txn.driver import DEFAULT_TICK_SECONDS, TxnDriver
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
              crash: Callable[[str], None] = crash_now) -> TxnDriver:
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
                       tick_seconds=DEFAULT_TICK_SECONDS, on_failure=on_failure, crash=crash)
    GroupReceiver(config.node_id, TXN_PEER_CODEC, driver.deliver).register(router,
                                                                           NODE_INSTANCE)
    return driver
