"""The replicated key-value store: a deterministic state machine over byte-string keys and values.

Commands and results are the `KVCommand` / `KVResult` protobuf messages of kv.proto: a put of
a 100-byte value encodes and decodes in a couple of microseconds, well below what one log
entry costs anyway, and the same bytes are readable by any protobuf tool. Keys and values are
`bytes` fields; commands and snapshots from the builds that declared them `string` decode
unchanged, since protobuf encodes both alike.

Exactly-once writes follow the client sessions of the Raft dissertation (§6.3): a client first
opens a session (its own random id, registered through the log), then numbers its writes
1, 2, 3, ... For each session the store keeps the last applied sequence and its result, so a
retry of the last write is answered from that record instead of being applied again, on any
replica, after a leader change, a snapshot or a restart. A write whose session is unknown is
refused rather than applied: the session may have expired after an earlier attempt succeeded,
and applying it again would break exactly-once. Sessions are bounded: beyond `max_sessions`
the least recently used expires. "Recently" counts applied commands, never clocks, so every
replica expires the same session at the same index.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from distlab.proto import kv_pb2

MAX_KEY_BYTES = 4096
# etcd's order of magnitude (its default request limit is 1.5 MiB): a value is a record, not a
# file, and every replica holds every value of its group in memory.
MAX_VALUE_BYTES = 1024 * 1024
MAX_VALUE_TEXT = "1 MiB"
DEFAULT_MAX_SESSIONS = 10_000

SNAPSHOT_MAGIC = b"DLKV"
SNAPSHOT_VERSION = 1
# magic, format version, CRC-32 of the body, body length
_SNAPSHOT_HEADER = struct.Struct(">4sBII")

Status = kv_pb2.KVResult.Status
OK = kv_pb2.KVResult.OK
MALFORMED = kv_pb2.KVResult.MALFORMED
SESSION_EXPIRED = kv_pb2.KVResult.SESSION_EXPIRED
STALE_SEQUENCE = kv_pb2.KVResult.STALE_SEQUENCE
VALUE_TOO_LARGE = kv_pb2.KVResult.VALUE_TOO_LARGE


class SnapshotError(ValueError):
    """A snapshot that is not one of this store's, is of an unknown version, or is damaged."""


def encode_result(status: Status, ok: bool = False, detail: str = "") -> bytes:
    return kv_pb2.KVResult(status=status, ok=ok, detail=detail).SerializeToString()


def decode_result(data: bytes) -> kv_pb2.KVResult:
    """Decode a result produced by `KVStateMachine.apply`; raises DecodeError if it is not one."""
    result = kv_pb2.KVResult()
    result.ParseFromString(data)
    return result


_OK_RESULT = encode_result(OK)
_OK_TRUE_RESULT = encode_result(OK, ok=True)
_SESSION_EXPIRED_RESULT = encode_result(SESSION_EXPIRED, detail="session is not registered")
_STALE_RESULT = encode_result(STALE_SEQUENCE, detail="sequence is older than the session's last")


def value_too_large(what: str, size: int | str) -> str:
    """The one-line refusal of a value above MAX_VALUE_BYTES, naming the limit."""
    return (f"{what} is {size} bytes, above the limit of {MAX_VALUE_BYTES} bytes "
            f"({MAX_VALUE_TEXT})")


@dataclass(slots=True)
class Session:
    last_sequence: int
    last_result: bytes


class KVStateMachine:
    """Implements `distlab.core.replicated_log.StateMachine` for the KV store.

    `apply` never raises for a command it receives: a command that cannot be decoded, or is
    not valid, is answered with a MALFORMED result and changes nothing.
    """

    def __init__(self, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        assert max_sessions >= 1, "the store needs room for at least one session"
        self.max_sessions = max_sessions
        self._data: dict[bytes, bytes] = {}
        self._sessions: OrderedDict[int, Session] = OrderedDict()
        self._applied_index = 0

    # ---- reads (local; linearizable only after the engine's read barrier) ----

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    @property
    def applied_index(self) -> int:
        """The log index of the last command applied (or restored from a snapshot)."""
        return self._applied_index

    def key_count(self) -> int:
        return len(self._data)

    def session_count(self) -> int:
        return len(self._sessions)

    def last_sequence(self, client_id: int) -> int | None:
        """The last applied sequence of a session, or None when the session is not open."""
        session = self._sessions.get(client_id)
        return None if session is None else session.last_sequence

    def apply_writes(self, writes: Iterable[tuple[str, str]]) -> None:
        """A committed transaction's writes, applied by the group's transaction records at
        their index (so on every replica at the same point of the log)."""
        data = self._data
        for key, value in writes:
            data[key.encode()] = value.encode()

    # ---- StateMachine ----

    def apply(self, index: int, command: bytes) -> bytes:
        self._applied_index = index
        message = kv_pb2.KVCommand()
        try:
            message.ParseFromString(command)
        except DecodeError as error:
            return encode_result(MALFORMED, detail=f"cannot decode command: {error}")
        op = message.WhichOneof("op")
        if op is None:
            return encode_result(MALFORMED, detail="command names no operation")
        client_id = message.client_id
        if client_id == 0:
            return encode_result(MALFORMED, detail="client_id must be non-zero")
        if op == "open_session":
            self._open_session(client_id)
            return _OK_RESULT

        sequence = message.sequence
        if sequence == 0:
            return encode_result(MALFORMED, detail="sequence must be at least 1")
        session = self._sessions.get(client_id)
        if session is None:
            return _SESSION_EXPIRED_RESULT
        self._sessions.move_to_end(client_id)
        if sequence == session.last_sequence:
            return session.last_result
        if sequence < session.last_sequence:
            return _STALE_RESULT
        result = self._execute(message)
        session.last_sequence = sequence
        session.last_result = result
        return result

    def snapshot(self) -> bytes:
        body = kv_pb2.KVSnapshotBody(
            applied_index=self._applied_index,
            entries=[kv_pb2.KVSnapshotEntry(key=k, value=v) for k, v in self._data.items()],
            sessions=[
                kv_pb2.KVSnapshotSession(
                    client_id=client_id,
                    last_sequence=session.last_sequence,
                    last_result=session.last_result,
                )
                for client_id, session in self._sessions.items()
            ],
        ).SerializeToString(deterministic=True)
        header = _SNAPSHOT_HEADER.pack(
            SNAPSHOT_MAGIC, SNAPSHOT_VERSION, zlib.crc32(body), len(body)
        )
        return header + body

    def restore(self, data: bytes) -> None:
        """Replace the whole state; raises SnapshotError, leaving the state as it was, when
        `data` is not an intact snapshot of this format."""
        body = read_snapshot_body(data)
        sessions: OrderedDict[int, Session] = OrderedDict(
            (s.client_id, Session(s.last_sequence, s.last_result)) for s in body.sessions
        )
        self._data = {entry.key: entry.value for entry in body.entries}
        self._sessions = sessions
        self._applied_index = body.applied_index
        self._expire_sessions()

    # ---- internals ----

    def _open_session(self, client_id: int) -> None:
        if client_id in self._sessions:
            self._sessions.move_to_end(client_id)
            return
        self._sessions[client_id] = Session(last_sequence=0, last_result=b"")
        self._expire_sessions()

    def _expire_sessions(self) -> None:
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def _execute(self, message: kv_pb2.KVCommand) -> bytes:
        op = message.WhichOneof("op")
        data = self._data
        if op == "put":
            data[message.put.key] = message.put.value
            return _OK_RESULT
        if op == "append":
            key = message.append.key
            current = data.get(key, b"")
            size = len(current) + len(message.append.value)
            if size > MAX_VALUE_BYTES:
                return encode_result(
                    VALUE_TOO_LARGE, detail=value_too_large("the value after the append", size)
                )
            data[key] = current + message.append.value
            return _OK_RESULT
        if op == "delete":
            existed = data.pop(message.delete.key, None) is not None
            return _OK_TRUE_RESULT if existed else _OK_RESULT
        assert op == "compare_and_set", op
        cas = message.compare_and_set
        current_value = data.get(cas.key)
        expected = cas.expected if cas.HasField("expected") else None
        if current_value != expected:
            return _OK_RESULT
        data[cas.key] = cas.value
        return _OK_TRUE_RESULT


def read_snapshot_body(data: bytes) -> kv_pb2.KVSnapshotBody:
    """Check a snapshot's header and checksum and decode its body."""
    if len(data) < _SNAPSHOT_HEADER.size:
        raise SnapshotError(f"KV snapshot too short: {len(data)} bytes")
    magic, version, checksum, length = _SNAPSHOT_HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(f"not a KV snapshot (magic {magic!r})")
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(f"KV snapshot version {version} is not supported "
                            f"(this build reads version {SNAPSHOT_VERSION})")
    body_bytes = data[_SNAPSHOT_HEADER.size:]
    if len(body_bytes) != length:
        raise SnapshotError(f"KV snapshot body is {len(body_bytes)} bytes, header says {length}")
    if zlib.crc32(body_bytes) != checksum:
        raise SnapshotError("KV snapshot checksum mismatch: the snapshot is damaged")
    body = kv_pb2.KVSnapshotBody()
    try:
        body.ParseFromString(body_bytes)
    except DecodeError as error:
        raise SnapshotError(f"KV snapshot body cannot be decoded: {error}") from error
    return body


# ---- command builders, shared by the servicer and tests ----

def put_command(client_id: int, sequence: int, key: bytes, value: bytes) -> bytes:
    return kv_pb2.KVCommand(
        client_id=client_id, sequence=sequence, put=kv_pb2.PutOp(key=key, value=value)
    ).SerializeToString()


def append_command(client_id: int, sequence: int, key: bytes, value: bytes) -> bytes:
    return kv_pb2.KVCommand(
        client_id=client_id, sequence=sequence, append=kv_pb2.AppendOp(key=key, value=value)
    ).SerializeToString()


def delete_command(client_id: int, sequence: int, key: bytes) -> bytes:
    return kv_pb2.KVCommand(
        client_id=client_id, sequence=sequence, delete=kv_pb2.DeleteOp(key=key)
    ).SerializeToString()


def cas_command(
    client_id: int, sequence: int, key: bytes, expected: bytes | None, value: bytes
) -> bytes:
    op = kv_pb2.CompareAndSetOp(key=key, value=value)
    if expected is not None:
        op.expected = expected
    return kv_pb2.KVCommand(
        client_id=client_id, sequence=sequence, compare_and_set=op
    ).SerializeToString()


def open_session_command(client_id: int) -> bytes:
    return kv_pb2.KVCommand(
        client_id=client_id, open_session=kv_pb2.OpenSessionOp()
    ).SerializeToString()
