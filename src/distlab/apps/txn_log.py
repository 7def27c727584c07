"""A consensus group's transaction records, replicated: the durable log of a group that is
one transaction participant (and coordinator), as DESIGN §16's `--participants groups`.

The leader of the group runs the transaction core; what the core would force to a node's
disk it proposes to the group instead, as one entry of records, and acts on it (votes,
sends COMMIT, acknowledges) only once the entry is applied. Every replica applies the same
records here, so whichever member leads next rebuilds the core from `records()` and goes on
where the last one stopped, locks and decisions included: no single crash blocks a
transaction.

Applying a participant's COMMITTED writes the transaction's writes into the group's shard
(through `apply_writes`), at the same index on every replica. With timestamps (2PC, Spanner's
scheme) every replica also keeps the versions by commit timestamp (`versions`, an MVCC store:
PREPARED holds the writes at their prepare timestamp, COMMITTED adds them at the commit
timestamp, SAFE_TIME records the leader's promises), so that any replica answers a snapshot
read once its safe time has passed the read's timestamp; versions older than the retention
window below the safe time are collected. What is kept is bounded: the unfinished
transactions in full, and the outcomes of the last `finished_limit` (to answer a late
duplicate the way the core would).
"""

from __future__ import annotations

import base64
import json
import logging
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from distlab.apps.mvcc import MVCCError, MVCCStore
from distlab.protocols.txn import CorruptTxnRecord, LogRecord, RecordKind, decode

log = logging.getLogger(__name__)

DEFAULT_FINISHED_LIMIT = 10_000
# Versions older than this below the safe time are collected (ten minutes, in ns).
DEFAULT_RETENTION_NS = 600 * 1_000_000_000
SNAPSHOT_FORMAT = 2
# kind, body length
_FRAME = struct.Struct(">BI")

Writes = tuple[tuple[str, str], ...]


def encode_records(records: Sequence[LogRecord]) -> bytes:
    """One log entry's worth of records, framed."""
    parts = []
    for record in records:
        body = record.encode()
        parts.append(_FRAME.pack(int(record.kind), len(body)))
        parts.append(body)
    return b"".join(parts)


def decode_records(command: bytes) -> list[LogRecord]:
    """The records of one entry; CorruptTxnRecord when `command` is not framed records."""
    records = []
    offset = 0
    while offset < len(command):
        if len(command) - offset < _FRAME.size:
            raise CorruptTxnRecord(f"a record frame cut short at byte {offset}")
        kind, size = _FRAME.unpack_from(command, offset)
        offset += _FRAME.size
        body = command[offset:offset + size]
        if len(body) != size:
            raise CorruptTxnRecord(f"a record body cut short at byte {offset}")
        offset += size
        records.append(decode(kind, body))
    return records


class TxnLogMachine:
    """Implements `StateMachine` for a group's transaction records."""

    def __init__(self, apply_writes: Callable[[Writes], None],
                 finished_limit: int = DEFAULT_FINISHED_LIMIT,
                 retention_ns: int = DEFAULT_RETENTION_NS) -> None:
        assert finished_limit >= 1 and retention_ns >= 0
        self._apply_writes = apply_writes
        self._finished_limit = finished_limit
        self._retention_ns = retention_ns
        self.versions = MVCCStore()
        # The highest timestamp in any record applied: a new leader assigns above it.
        self.max_ts = -1
        # Records whose timestamps the versions refused: a protocol bug, counted and logged
        # (every replica refuses alike, so none diverges).
        self.timestamp_errors = 0
        # Participant: the records of each unfinished transaction, PREPARED first.
        self._unfinished: dict[str, list[LogRecord]] = {}
        # Coordinator: COMMIT without END.
        self._committing: dict[str, LogRecord] = {}
        # Outcomes kept to answer duplicates: participant txn -> committed; ENDs.
        self._finished: OrderedDict[str, bool] = OrderedDict()
        self._ended: OrderedDict[str, LogRecord] = OrderedDict()
        self.applied_index = 0

    # ------------------------------------------------------------------ queries

    def records(self) -> list[LogRecord]:
        """What the core recovers from: finished outcomes first (nothing to redo for them),
        then the unfinished transactions' records in the order they were applied."""
        records = [LogRecord(RecordKind.SAFE_TIME, "", ts=self.max_ts)] if self.max_ts >= 0 else []
        records += [LogRecord(RecordKind.COMMITTED if committed else RecordKind.ABORTED, txn)
                    for txn, committed in self._finished.items()]
        records.extend(self._ended.values())
        for unfinished in self._unfinished.values():
            records.extend(unfinished)
        records.extend(self._committing.values())
        return records

    def unfinished(self) -> int:
        return len(self._unfinished) + len(self._committing)

    # ------------------------------------------------------------------ StateMachine

    def apply(self, index: int, command: bytes) -> bytes:
        self.applied_index = index
        try:
            records = decode_records(command)
        except CorruptTxnRecord as error:
            # Every replica skips it alike: one bad entry must not stop them all.
            log.error("entry %d: unreadable transaction records (%s); skipped", index, error)
            return str(error).encode()
        for record in records:
            self._apply_record(record)
        return b""

    def _apply_record(self, record: LogRecord) -> None:
        kind, txn = record.kind, record.txn
        if record.ts is not None:
            self.max_ts = max(self.max_ts, record.ts)
            try:
                self._apply_timestamped(record)
            except MVCCError as error:
                self.timestamp_errors += 1
                log.error("transaction %s: %s record at ts %d refused by the versions: %s",
                          txn, kind.name, record.ts, error)
        if kind is RecordKind.PREPARED:
            if txn not in self._finished:
                self._unfinished[txn] = [record]
        elif kind is RecordKind.ROUND:
            records = self._unfinished.get(txn)
            if records is not None:
                records.append(record)
        elif kind in (RecordKind.COMMITTED, RecordKind.ABORTED):
            records = self._unfinished.pop(txn, None)
            committed = kind is RecordKind.COMMITTED
            if committed and records is not None:
                self._apply_writes(records[0].writes)
            if not committed:
                self.versions.abort(txn.encode())
            self._remember(self._finished, txn, committed)
        elif kind is RecordKind.COORDINATOR_COMMIT:
            if txn not in self._ended:
                self._committing[txn] = record
        elif kind is RecordKind.COORDINATOR_END:
            self._committing.pop(txn, None)
            self._remember(self._ended, txn, record)

    def _apply_timestamped(self, record: LogRecord) -> None:
        assert record.ts is not None
        versions, kind, txn = self.versions, record.kind, record.txn.encode()
        if kind is RecordKind.PREPARED:
            if record.txn not in self._finished and txn not in self._prepared_versions():
                versions.prepare(txn, record.ts, {key.encode(): value.encode()
                                                  for key, value in record.writes})
        elif kind is RecordKind.COMMITTED:
            if txn in self._prepared_versions():
                versions.commit(txn, record.ts)
        elif kind is RecordKind.SAFE_TIME:
            versions.advance_safe_time(record.ts)
            versions.collect_older_than(self._retention_ns)

    def _prepared_versions(self) -> set[bytes]:
        return {prepared.txn_id for prepared in self.versions.prepared()}

    def _remember(self, kept: OrderedDict[str, Any], txn: str, value: Any) -> None:
        kept[txn] = value
        kept.move_to_end(txn)
        while len(kept) > self._finished_limit:
            kept.popitem(last=False)

    def snapshot(self) -> bytes:
        body = {
            "format": SNAPSHOT_FORMAT,
            "applied_index": self.applied_index,
            "unfinished": [[_frame(record) for record in records]
                           for records in self._unfinished.values()],
            "committing": [_frame(record) for record in self._committing.values()],
            "finished": [[txn, committed] for txn, committed in self._finished.items()],
            "ended": [_frame(record) for record in self._ended.values()],
            "max_ts": self.max_ts,
            "versions": base64.b64encode(self.versions.snapshot()).decode(),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def restore(self, data: bytes) -> None:
        """Replace the whole state; ValueError (the state unchanged) on a snapshot that is not
        one of this format."""
        try:
            body = json.loads(data)
            if body.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"format {body.get('format')} is not {SNAPSHOT_FORMAT}")
            unfinished = {}
            for frames in body["unfinished"]:
                records = [_unframe(frame) for frame in frames]
                unfinished[records[0].txn] = records
            committing = {record.txn: record
                          for record in map(_unframe, body["committing"])}
            finished = OrderedDict((str(txn), bool(committed))
                                   for txn, committed in body["finished"])
            ended = OrderedDict((record.txn, record) for record in map(_unframe, body["ended"]))
            applied_index = int(body["applied_index"])
            max_ts = int(body["max_ts"])
            versions = MVCCStore.from_snapshot(base64.b64decode(body["versions"]))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            raise ValueError(f"unreadable transaction records snapshot: {error}") from None
        self._unfinished, self._committing = unfinished, committing
        self._finished, self._ended = finished, ended
        self.applied_index = applied_index
        self.max_ts, self.versions = max_ts, versions


def _frame(record: LogRecord) -> list[object]:
    return [int(record.kind), record.encode().decode()]


def _unframe(frame: list[object]) -> LogRecord:
    kind, body = frame
    return decode(int(str(kind)), str(body).encode())
