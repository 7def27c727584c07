"""An in-process OTLP/gRPC trace receiver: what the tests and benchmarks attach to a cluster
in place of Jaeger or a collector, keeping every span it is sent in memory.

It implements the collector's `TraceService.Export` and nothing else (no storage, no query),
which is all a process exporting with `OTLP_ENDPOINT` needs to find at the other end.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, Any]


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        spans = []
        for resource_spans in request.resource_spans:
            attributes = {kv.key: kv.value for kv in resource_spans.resource.attributes}
            service = attributes["service.name"].string_value
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ReceivedSpan(
                        service=service, name=span.name, kind=span.kind,
                        trace_id=span.trace_id, span_id=span.span_id,
                        parent_span_id=span.parent_span_id,
                        attributes={kv.key: _plain(kv.value) for kv in span.attributes},
                    ))
        self._receiver.add(spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class OtlpReceiver:
    """Listens on a free port of 127.0.0.1; `endpoint` is what to put in OTLP_ENDPOINT."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # The generated registration function carries no annotations.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{port}"
        self._server.start()

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def take(self) -> list[ReceivedSpan]:
        """Every span received so far, forgotten here: a long run keeps memory bounded."""
        with self._lock:
            spans, self._spans = self._spans, []
        return spans

    def stop(self) -> None:
        self._server.stop(grace=None)
