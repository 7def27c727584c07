"""A bulk payload as a stream of chunks, and the chunks back into the payload."""

from __future__ import annotations

from collections.abc import Iterator

from distlab.core.vclock import VectorClock
from distlab.proto import peer_pb2

CHUNK_BYTES = 1 << 20
MAX_BULK_BYTES = 1 << 30


class MalformedTransfer(ValueError):
    """A bulk transfer's chunks do not make one whole payload."""


def bulk_chunks(service: str, group: int, payload: bytes, stamp: VectorClock | None = None
                ) -> Iterator[peer_pb2.BulkChunk]:
    """`payload` in chunks of at most CHUNK_BYTES, the first carrying the header (and the
    sender's vector clock, `stamp`)."""
    total = len(payload)
    offset = 0
    while True:
        piece = payload[offset : offset + CHUNK_BYTES]
        offset += len(piece)
        done = offset >= total
        if offset == len(piece):
            yield peer_pb2.BulkChunk(service=service, group=group, total_bytes=total, data=piece,
                                     done=done,
                                     vector_clock=stamp.counts if stamp is not None else None)
        else:
            yield peer_pb2.BulkChunk(data=piece, done=done)
        if done:
            return


class BulkAssembler:
    """Collects one transfer's chunks, checking the header, the size and the end."""

    def __init__(self, max_bytes: int = MAX_BULK_BYTES) -> None:
        self._max_bytes = max_bytes
        self.service = ""
        self.group = 0
        # The sender's vector clock at the send; None when it sent none.
        self.carried: VectorClock | None = None
        self._total = -1
        self._parts: list[bytes] = []
        self._size = 0
        self.done = False

    def add(self, chunk: peer_pb2.BulkChunk) -> None:
        if self.done:
            raise MalformedTransfer("a chunk after the last one")
        if self._total < 0:
            if not chunk.service:
                raise MalformedTransfer("a transfer must start with its header chunk")
            if chunk.total_bytes > self._max_bytes:
                raise MalformedTransfer(
                    f"a transfer of {chunk.total_bytes} bytes exceeds the limit of "
                    f"{self._max_bytes}")
            self.service, self.group, self._total = chunk.service, chunk.group, chunk.total_bytes
            if chunk.vector_clock:
                self.carried = VectorClock(chunk.vector_clock)
        self._size += len(chunk.data)
        if self._size > self._total:
            raise MalformedTransfer(f"more than the {self._total} bytes announced")
        self._parts.append(chunk.data)
        if chunk.done:
            if self._size != self._total:
                raise MalformedTransfer(f"{self._size} bytes of the {self._total} announced")
            self.done = True

    def payload(self) -> bytes:
        assert self.done, "the transfer is not complete"
        return b"".join(self._parts)
