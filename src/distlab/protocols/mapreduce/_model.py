"""The vocabulary of the MapReduce scheduler: jobs, splits, tasks, decisions and reports.

Everything here is plain data. Times are seconds on the caller's monotonic clock, except
`submitted_at`, which is wall-clock seconds kept only to tell a person how long a job has run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class TaskKind(enum.Enum):
    MAP = "map"
    REDUCE = "reduce"


class JobState(enum.Enum):
    QUEUED = "queued"
    MAP = "map"
    REDUCE = "reduce"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


class InvalidJob(ValueError):
    """A job that cannot run as submitted; the message is one line for the submitter."""


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class JobSpec:
    app: str
    inputs: tuple[InputFile, ...]
    reduces: int
    output_dir: str
    split_bytes: int

    def validate(self) -> None:
        if not self.app:
            raise InvalidJob("the job names no application")
        if not self.inputs:
            raise InvalidJob("the job has no input files")
        if self.reduces < 1:
            raise InvalidJob(f"a job needs at least one reduce task, not {self.reduces}")
        if self.split_bytes < 1:
            raise InvalidJob(f"split size must be positive, not {self.split_bytes}")
        if not self.output_dir:
            raise InvalidJob("the job names no output directory")


@dataclass(frozen=True, slots=True)
class Split:
    """One map task's input: `length` bytes of `path` from `offset`, widened by the worker to
    whole lines (a line that starts inside the split belongs to it)."""

    path: str
    offset: int
    length: int
    whole_file: bool


# A file larger than this is cut into several map tasks (the paper's splits are 16 to 64 MB,
# sized for GFS chunks). Smaller splits keep every worker busy to the end of the map phase
# (the last task of a worker is less than a second of work) at the cost of one report and R
# partition files per task.
DEFAULT_SPLIT_BYTES = 8 * 1024 * 1024


def plan_splits(inputs: tuple[InputFile, ...], split_bytes: int) -> list[Split]:
    """One split per file, or several for a file larger than `split_bytes`."""
    splits: list[Split] = []
    for item in inputs:
        if item.size <= split_bytes:
            splits.append(Split(item.path, 0, item.size, True))
            continue
        for offset in range(0, item.size, split_bytes):
            length = min(split_bytes, item.size - offset)
            splits.append(Split(item.path, offset, length, offset + length == item.size))
    return splits


@dataclass(frozen=True, slots=True)
class MapOutput:
    """Where a finished map task's partitions live: on the worker that ran it."""

    map_index: int
    worker_id: str
    address: str
    attempt: int


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    job_id: int
    kind: TaskKind
    index: int
    attempt: int
    app: str
    reduces: int
    output_dir: str
    traceparent: str
    split: Split | None = None
    map_outputs: tuple[MapOutput, ...] = ()
    backup: bool = False


@dataclass(frozen=True, slots=True)
class RunTask:
    task: TaskAssignment


@dataclass(frozen=True, slots=True)
class Wait:
    retry_after: float


@dataclass(frozen=True, slots=True)
class Exit:
    """The work is over; the worker should stop."""


Decision = RunTask | Wait | Exit


@dataclass(frozen=True, slots=True)
class FetchFailure:
    map_index: int
    worker_id: str
    attempt: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class TaskReport:
    worker_id: str
    address: str
    job_id: int
    kind: TaskKind
    index: int
    attempt: int
    success: bool
    error: str = ""
    fetch_failures: tuple[FetchFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    job_id: int
    app: str
    state: JobState
    maps_done: int
    maps_total: int
    reduces_done: int
    reduces_total: int
    input_bytes: int
    map_bytes_done: int
    elapsed_seconds: float
    output_dir: str
    error: str
    maps_reexecuted: int
    map_attempts: int
    reduce_attempts: int
    backup_attempts: int


@dataclass(slots=True)
class Counters:
    """Task events by (kind, what happened), the source of `distlab_mr_tasks_total`."""

    by_kind_state: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, kind: TaskKind, state: str) -> None:
        key = (kind.value, state)
        self.by_kind_state[key] = self.by_kind_state.get(key, 0) + 1

    def get(self, kind: TaskKind, state: str) -> int:
        return self.by_kind_state.get((kind.value, state), 0)
