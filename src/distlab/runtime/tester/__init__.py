"""The live parts of the Jepsen-style tester: clients recording a history, the nemesis
injecting faults, and the run that ties them to the checker and the report."""

from distlab.runtime.tester.nemesis import Nemesis, NemesisError
from distlab.runtime.tester.runner import RunOutcome, RunSettings, format_summary, run_test
from distlab.runtime.tester.workload import Workload

__all__ = [
    "Nemesis",
    "NemesisError",
    "RunOutcome",
    "RunSettings",
    "Workload",
    "format_summary",
    "run_test",
]
