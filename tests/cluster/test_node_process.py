"""`distlab node` as a process: bad configuration exits 2 with one line; signals stop it cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from prometheus_client.parser import text_string_to_metric_families

from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import admin_pb2, chain_pb2, kv_pb2, peer_pb2, txn_pb2
from tests.support import distlab_command, run_distlab, wait_for


@pytest.fixture
def ports() -> list[int]:
    return free_loopback_ports(4)


def node_env(ports: list[int], tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "NODE_ID": "1",
        "CLUSTER_NODES": f"1=127.0.0.1:{ports[0]},2=127.0.0.1:{ports[2]}",
        "LISTEN_ADDR": f"127.0.0.1:{ports[0]}",
        "METRICS_ADDR": f"127.0.0.1:{ports[1]}",
        "DATA_DIR": str(tmp_path / "node-1"),
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value}


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("distlab node: error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"NODE_ID": ""}, "NODE_ID is required"),
        ({"NODE_ID": "9"}, "NODE_ID 9 is not a member of CLUSTER_NODES (1,2)"),
        ({"CLUSTER_NODES": "1=127.0.0.1:7001,2=127.0.0.1:7001"}, "duplicate address"),
        ({"CLUSTER_NODES": "1=127.0.0.1:7001;2=x"}, "CLUSTER_NODES entry"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    ports: list[int], tmp_path: Path, overrides: dict[str, str], expected: str
) -> None:
    result = run_distlab("node", env=node_env(ports, tmp_path, **overrides) | {
        key: "" for key, value in overrides.items() if not value
    })
    assert_one_line_error(result, expected)


def test_flag_overrides_environment(ports: list[int], tmp_path: Path) -> None:
    result = run_distlab("node", "--node-id", "7", env=node_env(ports, tmp_path))
    assert_one_line_error(result, "NODE_ID 7 is not a member")


@pytest.mark.parametrize("which", ["LISTEN_ADDR", "METRICS_ADDR"])
def test_port_in_use_exits_2(ports: list[int], tmp_path: Path, which: str) -> None:
    env = node_env(ports, tmp_path)
    host, port = env[which].rsplit(":", 1)
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        result = run_distlab("node", env=env)
    assert_one_line_error(result, f"{which} 127.0.0.1:{port}: cannot bind")


@pytest.fixture
def running_node(ports: list[int], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        distlab_command("node"), env=node_env(ports, tmp_path) | {"PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                except grpc.RpcError:
                    return False
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

            wait_for(serving, timeout=30, what="the node to serve health checks")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_node_serves_reflection_and_metrics(
    running_node: subprocess.Popen[str], ports: list[int]
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"distlab.v1.Admin", "grpc.health.v1.Health"} <= services

    with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert "process_cpu_seconds" in families
    for name in ("distlab_raft_has_leader", "distlab_raft_is_leader", "distlab_raft_term"):
        assert families[name].type == "gauge"
        assert [sample.value for sample in families[name].samples] == [0.0]


def ask_reflection_v1(channel: grpc.Channel, *requests: reflection_pb2.ServerReflectionRequest
                      ) -> list[reflection_pb2.ServerReflectionResponse]:
    """Ask `grpc.reflection.v1`, as grpcurl does first. Its messages are v1alpha's field for
    field (grpc-proto's two reflection.proto files differ only in the package name), so the
    v1alpha classes write and read them."""
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    return list(info(iter(requests), timeout=5))


def test_node_serves_reflection_v1_listing_every_distlab_service(
    running_node: subprocess.Popen[str], ports: list[int]
) -> None:
    node_services = {service.full_name for module in (admin_pb2, chain_pb2, kv_pb2, peer_pb2,
                                                        txn_pb2)
                     for service in module.DESCRIPTOR.services_by_name.values()}
    with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
        (listing,) = ask_reflection_v1(
            channel, reflection_pb2.ServerReflectionRequest(list_services=""))
        listed = {service.name for service in listing.list_services_response.service}
        assert listed == node_services | {"grpc.health.v1.Health",
                                          "grpc.reflection.v1.ServerReflection",
                                          "grpc.reflection.v1alpha.ServerReflection"}
        symbols = [*sorted(node_services), "grpc.reflection.v1.ServerReflection"]
        answers = ask_reflection_v1(channel, *(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
            for symbol in symbols))
    for symbol, answer in zip(symbols, answers, strict=True):
        assert answer.WhichOneof("message_response") == "file_descriptor_response", answer
        files = [descriptor_pb2.FileDescriptorProto.FromString(data)
                 for data in answer.file_descriptor_response.file_descriptor_proto]
        package, _, name = symbol.rpartition(".")
        assert any(file.package == package and name in [s.name for s in file.service]
                   for file in files), (symbol, [file.name for file in files])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_node_cleanly(running_node: subprocess.Popen[str], signum: int) -> None:
    running_node.send_signal(signum)
    assert running_node.wait(timeout=10) == 0
    _, stderr = running_node.communicate()
    assert "Traceback" not in stderr
    assert "stopped" in stderr
