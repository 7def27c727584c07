"""The transaction log on the node's WAL: the driver's Storage port for its `TxnReady`s.

A Ready's records are appended to the shared log tagged with the instance, and the call
returns only once an fsync covers them (shared with the groups' fsyncs), so nothing that
depends on them (a yes vote, a COMMIT) leaves before they are durable.
"""

from __future__ import annotations

from typing import Any

from distlab.protocols.txn import LogRecord, TxnReady, decode
from distlab.runtime.host.sync import SharedSync
from distlab.storage.log_store import FileSharedLog

NODE_INSTANCE = 0


class TxnWalStorage:
    def __init__(self, shared_log: FileSharedLog, sync: SharedSync,
                 instance: int = NODE_INSTANCE) -> None:
        self._log = shared_log
        self._sync = sync
        self._instance = instance

    def recovered(self) -> list[LogRecord]:
        """The instance's records, decoded (CorruptTxnRecord on one that makes no sense)."""
        return [decode(kind, body) for kind, body in self._log.txn_records(self._instance)]

    async def persist(self, ready: TxnReady) -> None:
        if not ready.records:
            return
        seq = self._log.append_txn([(int(record.kind), record.encode())
                                    for record in ready.records], self._instance)
        await self._sync.durable(seq)

    def save_snapshot(self, snapshot: Any) -> None:
        raise ValueError("the transaction log takes no snapshots")

    def close(self) -> None:
        pass  # the node's storage closes the shared log
