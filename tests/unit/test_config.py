"""Configuration parsing: every bad input is a one-line ConfigError naming what is wrong."""

from pathlib import Path

import pytest

from distlab.runtime.config import (
    Address,
    ConfigError,
    load_node_config,
    parse_address,
    parse_cluster_nodes,
)

CLUSTER = "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"


def test_full_configuration_from_environment() -> None:
    config = load_node_config(
        {
            "NODE_ID": "2",
            "CLUSTER_NODES": CLUSTER,
            "LISTEN_ADDR": "127.0.0.1:7002",
            "METRICS_ADDR": "127.0.0.1:9002",
            "DATA_DIR": "/tmp/n2",
            "OTLP_ENDPOINT": "http://jaeger:4317",
        }
    )
    assert config.node_id == 2
    assert config.cluster[3] == Address("127.0.0.1", 7003)
    assert sorted(config.peers) == [1, 3]
    assert config.listen == Address("127.0.0.1", 7002)
    assert config.metrics == Address("127.0.0.1", 9002)
    assert config.data_dir == Path("/tmp/n2")
    assert config.otlp_endpoint == "http://jaeger:4317"


def test_defaults_follow_the_configuration_table() -> None:
    config = load_node_config({"NODE_ID": "3", "CLUSTER_NODES": "1,2,3"})
    assert config.cluster[1] == Address("node1", 7000)
    assert config.listen == Address("0.0.0.0", 7000)
    assert config.metrics == Address("0.0.0.0", 9000)
    assert config.data_dir == Path("data/node-3")
    assert config.otlp_endpoint is None


def test_flags_override_environment() -> None:
    config = load_node_config(
        {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "LISTEN_ADDR": "0.0.0.0:1"},
        {"NODE_ID": "3", "LISTEN_ADDR": "127.0.0.1:7003", "DATA_DIR": None},
    )
    assert config.node_id == 3
    assert config.listen == Address("127.0.0.1", 7003)


@pytest.mark.parametrize(("text", "engine"), [("paxos", "paxos"), (" Paxos ", "paxos"),
                                              ("raft", "raft"), ("", "raft")])
def test_engine_is_raft_or_paxos(text: str, engine: str) -> None:
    env = {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "ENGINE": text}
    assert load_node_config(env).engine == engine
    assert load_node_config({**env, "ENGINE": "raft"}, {"ENGINE": text or None}).engine == (
        engine)


def test_empty_otlp_endpoint_means_no_export() -> None:
    config = load_node_config({"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "OTLP_ENDPOINT": " "})
    assert config.otlp_endpoint is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLUSTER_NODES": CLUSTER}, "NODE_ID is required"),
        ({"NODE_ID": "", "CLUSTER_NODES": CLUSTER}, "NODE_ID is required"),
        ({"NODE_ID": "x", "CLUSTER_NODES": CLUSTER}, "NODE_ID: node id must be a positive integer"),
        ({"NODE_ID": "0", "CLUSTER_NODES": CLUSTER}, "NODE_ID: node id must be a positive integer"),
        ({"NODE_ID": "4", "CLUSTER_NODES": CLUSTER}, "NODE_ID 4 is not a member of CLUSTER_NODES"),
        ({"NODE_ID": "1"}, "CLUSTER_NODES is required"),
        ({"NODE_ID": "1", "CLUSTER_NODES": ""}, "CLUSTER_NODES is empty"),
        ({"NODE_ID": "1", "CLUSTER_NODES": "1=a:1,,2=b:2"}, "CLUSTER_NODES: empty entry"),
        ({"NODE_ID": "1", "CLUSTER_NODES": "1=a:1,two=b:2"}, "node id must be a positive integer"),
        ({"NODE_ID": "1", "CLUSTER_NODES": "1=a:1,2=b"}, "expected host:port"),
        ({"NODE_ID": "1", "CLUSTER_NODES": "1=a:1,2=b:99999"}, "port must be a number"),
        ({"NODE_ID": "1", "CLUSTER_NODES": "1=a:1,1=b:2"}, "node 1 is listed twice"),
        ({"NODE_ID": "1", "CLUSTER_NODES": "1=a:1,2=a:1"}, "duplicate address a:1"),
        (
            {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "LISTEN_ADDR": "nonsense"},
            "LISTEN_ADDR: expected host:port",
        ),
        (
            {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "METRICS_ADDR": "h:0"},
            "METRICS_ADDR: port must be a number",
        ),
        (
            {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "LISTEN_ADDR": "0.0.0.0:8000",
             "METRICS_ADDR": "127.0.0.1:8000"},
            "LISTEN_ADDR and METRICS_ADDR both use",
        ),
        (
            {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "ENGINE": "zab"},
            "ENGINE: expected one of raft, paxos, got 'zab'",
        ),
        (
            {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "ENGINE": "paxos", "JOIN": "1"},
            "JOIN: ENGINE=paxos groups have fixed members",
        ),
        (
            {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER, "TXN_TIMESTAMPS": "hlc"},
            "TXN_TIMESTAMPS: expected truetime or off, got 'hlc'",
        ),
    ],
)
def test_bad_configuration_is_one_line_naming_the_problem(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_node_config(env)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_ipv6_addresses() -> None:
    assert parse_address("[::1]:7000", "X") == Address("::1", 7000)
    assert str(Address("::1", 7000)) == "[::1]:7000"


def test_cluster_nodes_keeps_order_and_names_setting() -> None:
    assert list(parse_cluster_nodes("3=c:3, 1=a:1")) == [3, 1]
    with pytest.raises(ConfigError, match=r"^--cluster entry"):
        parse_cluster_nodes("1=a", what="--cluster")


def test_transaction_timestamps_and_the_unsafe_commit_wait_switch() -> None:
    base = {"NODE_ID": "1", "CLUSTER_NODES": CLUSTER}
    default = load_node_config(base)
    assert default.txn_timestamps and not default.unsafe_no_commit_wait
    off = load_node_config({**base, "TXN_TIMESTAMPS": "off",
                            "DISTLAB_UNSAFE_NO_COMMIT_WAIT": "1"})
    assert not off.txn_timestamps and off.unsafe_no_commit_wait
