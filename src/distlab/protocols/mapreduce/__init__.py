"""MapReduce's scheduler as a sans-I/O core: jobs, tasks, timeouts, re-execution, backups.

The coordinator process (distlab.runtime.mapreduce) owns the sockets, the clock and the job
log; this package decides.
"""

from distlab.protocols.mapreduce._model import (
    DEFAULT_SPLIT_BYTES,
    Counters,
    Decision,
    Exit,
    FetchFailure,
    InputFile,
    InvalidJob,
    JobSpec,
    JobState,
    MapOutput,
    Progress,
    RunTask,
    Split,
    TaskAssignment,
    TaskKind,
    TaskReport,
    Wait,
    plan_splits,
)
from distlab.protocols.mapreduce._records import RECORD_TYPES, Record
from distlab.protocols.mapreduce._scheduler import ATTEMPTS_PER_EPOCH, Scheduler, SchedulerConfig

__all__ = [
    "ATTEMPTS_PER_EPOCH",
    "DEFAULT_SPLIT_BYTES",
    "RECORD_TYPES",
    "Counters",
    "Decision",
    "Exit",
    "FetchFailure",
    "InputFile",
    "InvalidJob",
    "JobSpec",
    "JobState",
    "MapOutput",
    "Progress",
    "Record",
    "RunTask",
    "Scheduler",
    "SchedulerConfig",
    "Split",
    "TaskAssignment",
    "TaskKind",
    "TaskReport",
    "Wait",
    "plan_splits",
]
