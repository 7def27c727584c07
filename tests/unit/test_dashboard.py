"""The provisioned Grafana dashboard: valid JSON whose engine panels follow the `engine`
menu, so that they show Raft's or Multi-Paxos's metrics, and name only metrics a node
exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from distlab.core.status import EngineStatus
from distlab.runtime.host.metrics import DriverMetrics
from distlab.telemetry.metrics import GroupStatusCollector

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "distlab.json"
ENGINES = ("raft", "paxos")


def dashboard() -> dict:  # type: ignore[type-arg]
    loaded: dict = json.loads(DASHBOARD.read_text())  # type: ignore[type-arg]
    return loaded


def exported_names(engine: str) -> set[str]:
    DriverMetrics(engine, 0)
    status = EngineStatus(role="leader", term=1, leader_id=1, commit_index=0, applied_index=0)
    collector = GroupStatusCollector(engine, lambda: [(0, status)])
    names = {sample.name for family in collector.collect() for sample in family.samples}
    return names | {sample.name for family in REGISTRY.collect() for sample in family.samples}


def test_the_engine_menu_lists_both_engines() -> None:
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}
    engine = variables["engine"]
    pattern = re.compile(engine["regex"].strip("/"))
    found = [match.group(1) for name in ("distlab_raft_term", "distlab_paxos_term",
                                         "distlab_raft_commit_index")
             if (match := pattern.match(name))]
    assert found == ["raft", "paxos"]
    assert "${engine}" in variables["group"]["query"]


def test_engine_panels_follow_the_menu_and_name_exported_metrics() -> None:
    exprs = [target["expr"] for panel in dashboard()["panels"]
             for target in panel.get("targets", [])]
    assert not [expr for expr in exprs if "distlab_raft_" in expr or "distlab_paxos_" in expr]
    used = {name for expr in exprs for name in re.findall(r"distlab_\$\{engine\}_\w+", expr)}
    assert {"distlab_${engine}_has_leader", "distlab_${engine}_is_leader",
            "distlab_${engine}_term", "distlab_${engine}_leader_changes_seen_total",
            "distlab_${engine}_proposals_pending"} <= used
    for engine in ENGINES:
        exported = exported_names(engine)
        missing = sorted(name.replace("${engine}", engine) for name in used
                         if name.replace("${engine}", engine) not in exported)
        assert not missing, f"{engine}: the dashboard queries {missing}, which no node exports"


def test_transaction_panels_name_exported_metrics() -> None:
    from distlab.runtime.txn import metrics

    metrics.PHASE_SECONDS.labels("prepare", "node").observe(0.01)
    for counter in (metrics.LOCK_WAITS, metrics.LOCK_DEATHS, metrics.IN_DOUBT):
        counter.labels("node")
    metrics.OUTCOMES.labels("committed", "2pc", "node")
    exported = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    exprs = [target["expr"] for panel in dashboard()["panels"]
             for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"distlab_txn_\w+", expr)}
    assert {"distlab_txn_outcomes_total", "distlab_txn_in_doubt",
            "distlab_txn_phase_seconds_bucket"} <= used
    assert not sorted(used - exported)


def test_truetime_panels_name_exported_metrics() -> None:
    from distlab.core.truetime import DEFAULT_EPSILON, TrueTime
    from distlab.telemetry.truetime import COMMIT_WAIT, TrueTimeCollector

    COMMIT_WAIT.observe(0.008)
    collector = TrueTimeCollector(TrueTime(lambda: 0, lambda: 0.0, DEFAULT_EPSILON), 0)
    exported = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    exported |= {sample.name for family in collector.collect() for sample in family.samples}
    exprs = [target["expr"] for panel in dashboard()["panels"]
             for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"distlab_truetime_\w+", expr)}
    assert {"distlab_truetime_epsilon_seconds",
            "distlab_truetime_commit_wait_seconds_bucket"} <= used
    assert not sorted(used - exported)
