"""What clients and servers share: cluster lists, the NOT_LEADER encoding, the key's group."""

from __future__ import annotations

import zlib

import grpc
import pytest

from distlab.runtime.server import SERVER_OPTIONS
from distlab.wire.addresses import Address, ConfigError, parse_cluster_list
from distlab.wire.channels import CHANNEL_OPTIONS
from distlab.wire.not_leader import NotLeaderHint, decode_not_leader, encode_not_leader
from distlab.wire.sharding import group_of


def test_cluster_lists_name_ids_or_only_addresses() -> None:
    assert parse_cluster_list("1=127.0.0.1:7001,2=h:7002", "--cluster") == {
        1: Address("127.0.0.1", 7001), 2: Address("h", 7002)}
    assert parse_cluster_list("1,2", "--cluster") == {
        1: Address("node1", 7000), 2: Address("node2", 7000)}
    assert parse_cluster_list("127.0.0.1:7001, [::1]:7002", "--cluster") == [
        Address("127.0.0.1", 7001), Address("::1", 7002)]


@pytest.mark.parametrize("text, message", [
    ("1=a:1,b:2", "mixes"),
    ("a:1,a:1", "listed twice"),
    ("a:1,,b:2", "empty entry"),
    ("", "is empty"),
    ("a:99999", "port must be"),
    ("nowhere", "expected host:port"),
])
def test_bad_cluster_lists_are_one_line_naming_the_setting(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_cluster_list(text, "--cluster")
    assert str(raised.value).startswith("--cluster")
    assert "\n" not in str(raised.value)


class FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str,
                 trailers: tuple[tuple[str, str], ...]) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details)


def round_trip(leader_id: int | None, address: str | None, group: int) -> NotLeaderHint | None:
    encoded = encode_not_leader(leader_id, address, group)
    assert encoded.code == grpc.StatusCode.FAILED_PRECONDITION
    return decode_not_leader(FakeRpcError(encoded.code, encoded.details,
                                          encoded.trailing_metadata))


def test_not_leader_decodes_to_what_was_encoded() -> None:
    assert round_trip(3, "10.0.0.3:7000", 2) == NotLeaderHint(2, 3, "10.0.0.3:7000")
    assert round_trip(None, None, 0) == NotLeaderHint(0, None, None)
    assert "not the leader of group 2" in encode_not_leader(3, None, 2).details


def test_other_failures_are_not_leader_hints() -> None:
    assert decode_not_leader(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "too large",
                                          (("error-reason", "value-too-large"),))) is None
    assert decode_not_leader(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down", ())) is None


def test_a_keys_group_is_crc32_of_its_utf8_bytes() -> None:
    for key in ("k0", "bench-17", "ключ", "🔑"):
        assert group_of(key, 1) == 0
        assert group_of(key, 7) == zlib.crc32(key.encode("utf-8")) % 7
    spread = {group_of(f"key-{n}", 3) for n in range(100)}
    assert spread == {0, 1, 2}


def test_servers_accept_the_keepalive_pings_clients_send() -> None:
    """A client pinging sooner than the server allows has its connection closed with GOAWAY
    too_many_pings; the server's floor must sit below the client's interval, and hold with
    no calls in flight and no data sent."""
    client, server = dict(CHANNEL_OPTIONS), dict(SERVER_OPTIONS)
    interval = client["grpc.keepalive_time_ms"]
    # gRPC's server default is five minutes; anything above the client's interval strikes.
    floor = server.get("grpc.http2.min_ping_interval_without_data_ms", 300_000)
    assert floor < interval
    assert client.get("grpc.http2.max_pings_without_data") == 0
    assert server.get("grpc.keepalive_permit_without_calls") == 1
