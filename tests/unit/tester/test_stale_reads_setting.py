"""DISTLAB_UNSAFE_STALE_READS, the deliberately broken store `distlab test` must catch, is
off unless set, and refuses values it does not understand."""

from __future__ import annotations

import pytest

from distlab.runtime.config import ConfigError, load_node_config

BASE = {"NODE_ID": "1", "CLUSTER_NODES": "1=127.0.0.1:7001,2=127.0.0.1:7002"}


def test_stale_reads_are_off_by_default() -> None:
    assert load_node_config(BASE).unsafe_stale_reads is False
    assert load_node_config({**BASE, "DISTLAB_UNSAFE_STALE_READS": "0"}).unsafe_stale_reads \
        is False


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_stale_reads_can_be_switched_on(value: str) -> None:
    config = load_node_config({**BASE, "DISTLAB_UNSAFE_STALE_READS": value})
    assert config.unsafe_stale_reads is True


def test_a_value_that_is_not_a_flag_is_refused() -> None:
    with pytest.raises(ConfigError, match="DISTLAB_UNSAFE_STALE_READS"):
        load_node_config({**BASE, "DISTLAB_UNSAFE_STALE_READS": "maybe"})
