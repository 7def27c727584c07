"""An OTLP/gRPC trace receiver that prints each span as one JSON line on standard output.

It stands in for Jaeger inside a compose network: the tests run it in a container of the
distlab image (whose Python has grpcio and the OTLP protobufs) and read the spans back from
`docker logs`. It uses only what that image has, and no dollar sign (compose would read one
as a variable).
"""

import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def plain(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    # Exports arrive on several threads; one write per line keeps lines whole.
    lock = threading.Lock()

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value for kv in resource_spans.resource.attributes}
            service = resource["service.name"].string_value
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line = json.dumps({
                        "service": service, "name": span.name, "kind": span.kind,
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "attributes": {kv.key: plain(kv.value) for kv in span.attributes},
                    }, default=str)
                    with self.lock:
                        sys.stdout.write(line + "\n")
                        sys.stdout.flush()
        return trace_service_pb2.ExportTraceServiceResponse()


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Sink(), server)
server.add_insecure_port("0.0.0.0:4317")
server.start()
print(json.dumps({"listening": 4317}), flush=True)
server.wait_for_termination()
