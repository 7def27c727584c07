"""The live parts of the Jepsen-style tester: clients recording a history, the nemesis
injecting faults, and the run that ties them to the checker and the report."""

from distlab.ops.tester.nemesis import Nemesis, NemesisError
from distlab.ops.tester.runner import (
    RunOutcome,
    RunSettings,
    format_summary,
    run_test,
    run_until_interrupted,
)
from distlab.ops.tester.workload import Workload

__all__ = [
    "Nemesis",
    "NemesisError",
    "RunOutcome",
    "RunSettings",
    "Workload",
    "format_summary",
    "run_test",
    "run_until_interrupted",
]
