"""The coordinator's scheduler: which worker runs which task, and what happens when one fails.

A sans-I/O object in the style of aioquic: every input carries `now` (seconds on the caller's
monotonic clock), `get_timer()` says when the next timeout falls due and `handle_timer(now)`
processes the ones that did. Changes worth surviving a restart come out of `take_records()`;
the caller persists them (fsync) before it answers the call that produced them, and feeds them
to `replay()` after a restart.

Jobs run one at a time in order of submission. Within a job the map tasks run first; reduce
tasks are handed out only while every map task's output is available, because each reducer
reads one partition from every map task (Dean & Ghemawat 2004, section 3.1). Failures:

- a copy of a task not reported within `task_timeout` is abandoned and the task handed out
  again (a late report from the abandoned copy still counts: the first finisher wins);
- a worker silent for `worker_timeout` is dead: its running copies are abandoned and its
  finished map tasks of the running job are run again, since their output was on its disk;
- a reducer that cannot fetch a map output reports it, and that map task is run again;
- near the end of a phase, idle workers get backup copies of the tasks still running
  (section 3.6), whichever copy finishes first wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from distlab.protocols.mapreduce import _records as records
from distlab.protocols.mapreduce._model import (
    Counters,
    Decision,
    Exit,
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
from distlab.protocols.mapreduce._records import Record

# Attempt ids are epoch * ATTEMPTS_PER_EPOCH + a counter, so copies started before and after a
# coordinator restart never share an id (the id names a map output on the worker's disk).
ATTEMPTS_PER_EPOCH = 1_000_000_000
# How many finished jobs heartbeat replies list, so workers can delete their intermediate files.
FINISHED_JOBS_LISTED = 32


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    task_timeout: float = 10.0
    worker_timeout: float = 3.0
    heartbeat_interval: float = 0.5
    backup_tasks: bool = True
    # A phase is near its end when at most this fraction of its tasks (at least one) is left.
    backup_fraction: float = 0.1
    # A copy must have run this long before a backup of it is started.
    backup_after: float = 1.0
    # Application errors (exceptions) a task may have before its job fails.
    max_task_failures: int = 4
    # Tell workers to exit once every submitted job is finished.
    exit_when_idle: bool = False
    # How long a worker with nothing to do waits before asking again.
    wait_seconds: float = 0.25

    def __post_init__(self) -> None:
        assert self.task_timeout > 0, self.task_timeout
        assert self.worker_timeout > 0, self.worker_timeout
        assert 0 <= self.backup_fraction <= 1, self.backup_fraction
        assert self.max_task_failures >= 1, self.max_task_failures


@dataclass(slots=True)
class _Attempt:
    attempt_id: int
    worker_id: str
    started_at: float
    deadline: float


@dataclass(slots=True)
class _Task:
    kind: TaskKind
    index: int
    split: Split | None = None
    running: dict[int, _Attempt] = field(default_factory=dict)
    done: bool = False
    output: MapOutput | None = None
    failures: int = 0

    @property
    def idle(self) -> bool:
        return not self.done and not self.running


@dataclass(slots=True)
class _Job:
    job_id: int
    spec: JobSpec
    submitted_at: float
    traceparent: str
    maps: list[_Task]
    reduces: list[_Task]
    state: JobState = JobState.QUEUED
    error: str = ""
    maps_reexecuted: int = 0
    map_attempts: int = 0
    reduce_attempts: int = 0
    backup_attempts: int = 0

    def tasks(self, kind: TaskKind) -> list[_Task]:
        return self.maps if kind is TaskKind.MAP else self.reduces

    @property
    def maps_done(self) -> bool:
        return all(task.done for task in self.maps)


@dataclass(slots=True)
class _Worker:
    worker_id: str
    address: str
    last_seen: float
    alive: bool = True
    told_exit: bool = False


class Scheduler:
    """The job table and task assignment of one coordinator."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.counters = Counters()
        # Bumped on every change a watcher could see; lets the caller wake progress streams.
        self.version = 0
        self._jobs: dict[int, _Job] = {}
        self._workers: dict[str, _Worker] = {}
        self._records: list[Record] = []
        self._epoch = 0
        self._attempts_started = 0
        self._started = False

    # ---- lifecycle and durability

    def replay(self, recovered: Iterable[Record], now: float) -> None:
        """Rebuild the job table from records persisted by an earlier life of this coordinator.

        Workers named by finished map tasks are presumed alive from `now`: they get
        `worker_timeout` to get back in touch before their map outputs are written off.
        """
        assert not self._started, "replay comes before start"
        for record in recovered:
            self._apply(record, now)
        for job in self._jobs.values():
            for task in job.maps:
                if task.done and task.output is not None:
                    self._touch(task.output.worker_id, task.output.address, now)
        self._refresh_states()

    def start(self) -> None:
        """Begin a new life (epoch); emits the record that numbers it."""
        assert not self._started
        self._started = True
        self._epoch += 1
        self._emit({"type": records.START, "epoch": self._epoch})

    def take_records(self) -> list[Record]:
        """Records to persist before answering the call that produced them."""
        taken, self._records = self._records, []
        return taken

    @property
    def epoch(self) -> int:
        return self._epoch

    # ---- inputs

    def submit(self, spec: JobSpec, submitted_at: float, traceparent: str = "") -> int:
        """Queue a job; raises InvalidJob when it cannot run."""
        self._check_started()
        spec.validate()
        job_id = max(self._jobs, default=0) + 1
        record: Record = {
            "type": records.SUBMIT,
            "job": job_id,
            "spec": records.spec_to_record(spec),
            "submitted_at": submitted_at,
            "traceparent": traceparent,
        }
        self._emit(record)
        self._apply(record, now=0.0)
        self._refresh_states()
        return job_id

    def request_task(self, worker_id: str, address: str, now: float) -> Decision:
        """A worker with nothing to do asks for a task."""
        self._check_started()
        worker = self._touch(worker_id, address, now)
        # A worker asks only when it runs nothing, so any copy the table still has on it (a
        # worker restarted under the same id, a report lost with a coordinator) is abandoned.
        self._abandon_attempts(lambda attempt: attempt.worker_id == worker_id, "abandoned")
        if self.work_over:
            self._tell_exit(worker)
            return Exit()
        job = self._active_job()
        if job is None:
            return Wait(self.config.wait_seconds)
        kind = TaskKind.MAP if not job.maps_done else TaskKind.REDUCE
        picked = self._pick(job, kind, worker_id, now)
        if picked is None:
            return Wait(self.config.wait_seconds)
        task, backup = picked
        return RunTask(self._start_attempt(job, task, worker_id, now, backup))

    def report(self, report: TaskReport, now: float) -> bool:
        """A worker reports a copy of a task finished or failed. Returns whether it counted:
        False for a duplicate (another copy won) or a report about a finished job."""
        self._check_started()
        self._touch(report.worker_id, report.address, now)
        job = self._jobs.get(report.job_id)
        if job is None or job.state.finished or job.state is JobState.QUEUED:
            self.counters.add(report.kind, "stale")
            return False
        tasks = job.tasks(report.kind)
        if not 0 <= report.index < len(tasks):
            # A peer's bad message is counted and ignored, never a crash of the coordinator.
            self.counters.add(report.kind, "rejected")
            return False
        task = tasks[report.index]
        task.running.pop(report.attempt, None)
        self.version += 1
        if report.success:
            return self._finish(job, task, report)
        if report.fetch_failures:
            self.counters.add(report.kind, "fetch_failed")
            for failure in report.fetch_failures:
                if not 0 <= failure.map_index < len(job.maps):
                    self.counters.add(TaskKind.MAP, "rejected")
                    continue
                lost = job.maps[failure.map_index]
                if lost.done and lost.output is not None and (
                    lost.output.worker_id == failure.worker_id
                    and lost.output.attempt == failure.attempt
                ):
                    self._lose_map(job, lost)
            self._refresh_states()
            return True
        task.failures += 1
        self.counters.add(report.kind, "failed")
        if task.failures >= self.config.max_task_failures:
            self._fail_job(
                job,
                f"{report.kind.value} task {report.index} failed {task.failures} times: "
                f"{report.error or 'no reason given'}",
            )
        return True

    def heartbeat(self, worker_id: str, address: str, now: float) -> bool:
        """A worker says it is alive. Returns False when it should exit (the work is over)."""
        self._check_started()
        worker = self._touch(worker_id, address, now)
        if self.work_over:
            self._tell_exit(worker)
            return False
        return True

    def get_timer(self) -> float | None:
        """When the next task or worker timeout falls due, or None when nothing is timed."""
        deadlines = [
            attempt.deadline
            for job in self._unfinished_jobs()
            for task in (*job.maps, *job.reduces)
            for attempt in task.running.values()
        ]
        deadlines.extend(
            worker.last_seen + self.config.worker_timeout
            for worker in self._workers.values()
            if worker.alive
        )
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        self._abandon_attempts(lambda attempt: attempt.deadline <= now, "timed_out")
        for worker in self._workers.values():
            if worker.alive and worker.last_seen + self.config.worker_timeout <= now:
                self._worker_lost(worker)

    # ---- queries

    @property
    def work_over(self) -> bool:
        """Whether workers should exit: only in exit-when-idle mode, after every job finished."""
        return (
            self.config.exit_when_idle
            and bool(self._jobs)
            and all(job.state.finished for job in self._jobs.values())
        )

    @property
    def every_worker_told_to_exit(self) -> bool:
        return all(w.told_exit for w in self._workers.values() if w.alive)

    def latest_job_id(self) -> int | None:
        return max(self._jobs, default=None)

    def job_ids(self) -> list[int]:
        return list(self._jobs)

    def traceparent(self, job_id: int) -> str:
        return self._jobs[job_id].traceparent

    def finished_jobs(self) -> list[int]:
        finished = [job_id for job_id, job in self._jobs.items() if job.state.finished]
        return finished[-FINISHED_JOBS_LISTED:]

    def jobs_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self._jobs.values():
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        return counts

    def live_workers(self) -> list[str]:
        return sorted(w.worker_id for w in self._workers.values() if w.alive)

    def progress(self, job_id: int, wall_now: float) -> Progress:
        job = self._jobs[job_id]
        return Progress(
            job_id=job.job_id,
            app=job.spec.app,
            state=job.state,
            maps_done=sum(task.done for task in job.maps),
            maps_total=len(job.maps),
            reduces_done=sum(task.done for task in job.reduces),
            reduces_total=len(job.reduces),
            input_bytes=sum(item.size for item in job.spec.inputs),
            map_bytes_done=sum(t.split.length for t in job.maps if t.done and t.split),
            elapsed_seconds=max(0.0, wall_now - job.submitted_at),
            output_dir=job.spec.output_dir,
            error=job.error,
            maps_reexecuted=job.maps_reexecuted,
            map_attempts=job.map_attempts,
            reduce_attempts=job.reduce_attempts,
            backup_attempts=job.backup_attempts,
        )

    # ---- internals

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError("Scheduler.start() must be called before it takes inputs")

    def _emit(self, record: Record) -> None:
        self._records.append(record)

    def _apply(self, record: Record, now: float) -> None:
        kind = record.get("type")
        if kind == records.START:
            self._epoch = int(record["epoch"])
            return
        if kind == records.SUBMIT:
            spec = records.spec_from_record(record["spec"])
            job_id = int(record["job"])
            maps = [
                _Task(TaskKind.MAP, index, split)
                for index, split in enumerate(plan_splits(spec.inputs, spec.split_bytes))
            ]
            reduces = [_Task(TaskKind.REDUCE, index) for index in range(spec.reduces)]
            self._jobs[job_id] = _Job(
                job_id, spec, float(record["submitted_at"]), str(record.get("traceparent", "")),
                maps, reduces,
            )
            return
        job = self._jobs[int(record["job"])]
        if kind == records.MAP_DONE:
            task = job.maps[int(record["index"])]
            task.done = True
            task.output = MapOutput(
                task.index, str(record["worker"]), str(record["address"]), int(record["attempt"])
            )
        elif kind == records.MAP_LOST:
            task = job.maps[int(record["index"])]
            task.done = False
            task.output = None
            job.maps_reexecuted += 1
        elif kind == records.REDUCE_DONE:
            job.reduces[int(record["index"])].done = True
        elif kind == records.JOB_DONE:
            job.state = JobState.DONE
        elif kind == records.JOB_FAILED:
            job.state = JobState.FAILED
            job.error = str(record.get("error", ""))
        else:
            raise ValueError(f"unknown job log record type {kind!r}")

    def _touch(self, worker_id: str, address: str, now: float) -> _Worker:
        worker = self._workers.get(worker_id)
        if worker is None:
            worker = _Worker(worker_id, address, now)
            self._workers[worker_id] = worker
        worker.alive = True
        worker.last_seen = max(worker.last_seen, now)
        if address:
            worker.address = address
        return worker

    def _tell_exit(self, worker: _Worker) -> None:
        if not worker.told_exit:
            worker.told_exit = True
            # A change the caller waits for: it exits once every live worker has been told.
            self.version += 1

    def _unfinished_jobs(self) -> list[_Job]:
        return [job for job in self._jobs.values() if not job.state.finished]

    def _active_job(self) -> _Job | None:
        return next(iter(self._unfinished_jobs()), None)

    def _refresh_states(self) -> None:
        active = self._active_job()
        for job in self._unfinished_jobs():
            if job is not active:
                job.state = JobState.QUEUED
            elif all(task.done for task in job.reduces):
                job.state = JobState.DONE
                self._emit({"type": records.JOB_DONE, "job": job.job_id})
                self._refresh_states()
                return
            else:
                job.state = JobState.MAP if not job.maps_done else JobState.REDUCE
        self.version += 1

    def _pick(
        self, job: _Job, kind: TaskKind, worker_id: str, now: float
    ) -> tuple[_Task, bool] | None:
        tasks = job.tasks(kind)
        idle = next((task for task in tasks if task.idle), None)
        if idle is not None:
            return idle, False
        if not self.config.backup_tasks:
            return None
        remaining = [task for task in tasks if not task.done]
        if len(remaining) > max(1, math.ceil(self.config.backup_fraction * len(tasks))):
            return None
        candidates = [
            task
            for task in remaining
            if len(task.running) == 1
            and all(a.worker_id != worker_id for a in task.running.values())
            and now - min(a.started_at for a in task.running.values()) >= self.config.backup_after
        ]
        if not candidates:
            return None
        oldest = min(candidates, key=lambda t: min(a.started_at for a in t.running.values()))
        return oldest, True

    def _start_attempt(
        self, job: _Job, task: _Task, worker_id: str, now: float, backup: bool
    ) -> TaskAssignment:
        self._attempts_started += 1
        assert self._attempts_started < ATTEMPTS_PER_EPOCH
        attempt_id = self._epoch * ATTEMPTS_PER_EPOCH + self._attempts_started
        task.running[attempt_id] = _Attempt(
            attempt_id, worker_id, now, now + self.config.task_timeout
        )
        self.counters.add(task.kind, "started")
        if task.kind is TaskKind.MAP:
            job.map_attempts += 1
        else:
            job.reduce_attempts += 1
        if backup:
            job.backup_attempts += 1
            self.counters.add(task.kind, "backup")
        self.version += 1
        outputs: tuple[MapOutput, ...] = ()
        if task.kind is TaskKind.REDUCE:
            outputs = tuple(m.output for m in job.maps if m.output is not None)
            assert len(outputs) == len(job.maps), "reduce handed out with map output missing"
        return TaskAssignment(
            job_id=job.job_id,
            kind=task.kind,
            index=task.index,
            attempt=attempt_id,
            app=job.spec.app,
            reduces=job.spec.reduces,
            output_dir=job.spec.output_dir,
            traceparent=job.traceparent,
            split=task.split,
            map_outputs=outputs,
            backup=backup,
        )

    def _finish(self, job: _Job, task: _Task, report: TaskReport) -> bool:
        if task.done:
            self.counters.add(task.kind, "duplicate")
            return False
        task.done = True
        # The first finisher wins; other copies still running become orphans whose reports
        # will be duplicates, and their workers ask for new work when they are done.
        task.running.clear()
        self.counters.add(task.kind, "completed")
        if task.kind is TaskKind.MAP:
            worker = self._workers[report.worker_id]
            task.output = MapOutput(task.index, report.worker_id, worker.address, report.attempt)
            self._emit({
                "type": records.MAP_DONE, "job": job.job_id, "index": task.index,
                "worker": report.worker_id, "address": worker.address, "attempt": report.attempt,
            })
        else:
            self._emit({"type": records.REDUCE_DONE, "job": job.job_id, "index": task.index})
        self._refresh_states()
        return True

    def _lose_map(self, job: _Job, task: _Task) -> None:
        assert task.kind is TaskKind.MAP and task.done
        task.done = False
        task.output = None
        job.maps_reexecuted += 1
        self.counters.add(TaskKind.MAP, "lost")
        self._emit({"type": records.MAP_LOST, "job": job.job_id, "index": task.index})

    def _fail_job(self, job: _Job, error: str) -> None:
        job.state = JobState.FAILED
        job.error = error
        for task in (*job.maps, *job.reduces):
            task.running.clear()
        self._emit({"type": records.JOB_FAILED, "job": job.job_id, "error": error})
        self._refresh_states()

    def _abandon_attempts(self, which: Callable[[_Attempt], bool], reason: str) -> None:
        for job in self._unfinished_jobs():
            for task in (*job.maps, *job.reduces):
                for attempt_id in [a for a, attempt in task.running.items() if which(attempt)]:
                    del task.running[attempt_id]
                    self.counters.add(task.kind, reason)
                    self.version += 1

    def _worker_lost(self, worker: _Worker) -> None:
        worker.alive = False
        self._abandon_attempts(lambda attempt: attempt.worker_id == worker.worker_id,
                               "worker_lost")
        for job in self._unfinished_jobs():
            for task in job.maps:
                if task.done and task.output is not None and (
                    task.output.worker_id == worker.worker_id
                ):
                    self._lose_map(job, task)
        self._refresh_states()


__all__ = ["Scheduler", "SchedulerConfig"]
