"""gRPC server reflection under both of its names: `grpc.reflection.v1` and `v1alpha`.

Current clients (grpcurl, Postman, grpc_cli) ask for v1 first and fall back to v1alpha, but
grpcio-reflection only implements v1alpha. The two protocols are the same messages with the
same field numbers under another package name, so one servicer answers both: v1alpha through
the package's own registration, v1 through a handler that (de)serializes the same bytes, and
the v1 schema, the v1alpha one renamed, is added to the descriptor pool so that clients can
also ask reflection about the v1 service itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
# Where grpc-proto keeps the v1 schema, so the file reflection names is the canonical one.
V1_FILE = "grpc/reflection/v1/reflection.proto"
_V1ALPHA_PACKAGE = reflection_pb2.DESCRIPTOR.package


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The v1 schema: the v1alpha file with its package, its type references and its options
    renamed as in grpc-proto's `grpc/reflection/v1/reflection.proto`."""
    schema = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    schema.name = V1_FILE
    schema.package = V1_PACKAGE
    old_prefix, new_prefix = f".{_V1ALPHA_PACKAGE}.", f".{V1_PACKAGE}."

    def renamed(type_name: str) -> str:
        return new_prefix + type_name.removeprefix(old_prefix)

    for message in schema.message_type:
        for field in message.field:
            # Only fields of message types name one (a scalar's empty name must stay unset).
            if field.type_name.startswith(old_prefix):
                field.type_name = renamed(field.type_name)
    for service in schema.service:
        for method in service.method:
            method.input_type = renamed(method.input_type)
            method.output_type = renamed(method.output_type)
    schema.options.Clear()
    schema.options.java_package = "io.grpc.reflection.v1"
    schema.options.java_outer_classname = "ServerReflectionProto"
    schema.options.java_multiple_files = True
    schema.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    return schema


def _register_v1_schema(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.Add(v1_file_descriptor())


def enable_reflection(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and both
    reflection services."""
    pool = descriptor_pool.Default()
    _register_v1_schema(pool)
    servicer = reflection.aio.ReflectionServicer(
        [*service_names, V1_SERVICE, V1ALPHA_SERVICE], pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_registered_method_handlers(V1_SERVICE, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString),
    })
