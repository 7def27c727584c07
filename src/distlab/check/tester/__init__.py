"""The pure parts of the Jepsen-style tester: the operation mix, the fault schedule and
partition shapes, the latency plot and the report. The parts that run a cluster, clients
and faults live in `distlab.ops.tester`.
"""

from distlab.check.tester.latency import LatencyPoint, ShadedWindow, render_latency_svg
from distlab.check.tester.mix import DEFAULT_MIX, Mix, MixError, parse_mix
from distlab.check.tester.report import (
    FaultRecord,
    HistorySummary,
    summarize_history,
    write_report,
)
from distlab.check.tester.schedule import (
    FAULTS,
    FaultSchedule,
    Partition,
    PlannedFault,
    ScheduleError,
    choose_partition,
    parse_nemesis,
    plan_schedule,
)

__all__ = [
    "DEFAULT_MIX",
    "FAULTS",
    "FaultRecord",
    "FaultSchedule",
    "HistorySummary",
    "LatencyPoint",
    "Mix",
    "MixError",
    "Partition",
    "PlannedFault",
    "ScheduleError",
    "ShadedWindow",
    "choose_partition",
    "parse_mix",
    "parse_nemesis",
    "plan_schedule",
    "render_latency_svg",
    "summarize_history",
    "write_report",
]
