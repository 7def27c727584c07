"""The chain's metrics: what a node's collector exports, and that the dashboard's chain
panels query only those."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import REGISTRY

from distlab.core.ids import NodeId
from distlab.protocols.chain import Ack, ChainConfig, ChainReplica, ReplicaConfig, StoredReplica
from distlab.runtime.grpc.chain import CHAIN_READS, ChainCollector

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "dashboards" / "distlab.json"


def test_the_collector_reports_role_epoch_sent_and_applied() -> None:
    core = ChainReplica(ReplicaConfig(NodeId(2)), StoredReplica())
    core.configure(ChainConfig(3, (NodeId(1), NodeId(2), NodeId(3))))
    collector = ChainCollector(SimpleNamespace(core=core, reconfigurations=1))  # type: ignore[arg-type]
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in collector.collect() for sample in family.samples}
    assert samples[("distlab_chain_epoch", ())] == 3
    assert samples[("distlab_chain_role", (("role", "middle"),))] == 1
    assert samples[("distlab_chain_role", (("role", "tail"),))] == 0
    assert samples[("distlab_chain_sent", ())] == 0
    assert samples[("distlab_chain_reconfigurations_total", ())] == 1
    core.step(Ack(2, NodeId(3), NodeId(2), 0, 0, False))
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in collector.collect() for sample in family.samples}
    assert samples[("distlab_chain_messages_refused_total", (("reason", "stale-epoch"),))] == 1
    assert samples[("distlab_chain_stale_messages_refused_total", (("sender", "3"),))] == 1


def test_the_dashboards_chain_panels_query_exported_metrics() -> None:
    CHAIN_READS.labels(mode="cr", outcome="tail")
    core = ChainReplica(ReplicaConfig(NodeId(1)), StoredReplica())
    collector = ChainCollector(SimpleNamespace(core=core, reconfigurations=0))  # type: ignore[arg-type]
    exported = {sample.name for family in collector.collect() for sample in family.samples}
    exported |= {sample.name for family in REGISTRY.collect() for sample in family.samples}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {name for panel in panels for target in panel.get("targets", [])
            for name in re.findall(r"distlab_chain_\w+", target["expr"])}
    assert {"distlab_chain_epoch", "distlab_chain_sent", "distlab_chain_role",
            "distlab_chain_reads_total"} <= used
    assert used <= exported, sorted(used - exported)
