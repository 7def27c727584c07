"""The MapReduce scheduler core on virtual time: assignment, timeouts, dead workers, backups,
fetch failures and recovery from its own records."""

from __future__ import annotations

import random

import pytest

from distlab.protocols.mapreduce import (
    ATTEMPTS_PER_EPOCH,
    Exit,
    FetchFailure,
    InputFile,
    InvalidJob,
    JobSpec,
    JobState,
    Record,
    RunTask,
    Scheduler,
    SchedulerConfig,
    TaskAssignment,
    TaskKind,
    TaskReport,
    Wait,
)

NO_BACKUPS = SchedulerConfig(task_timeout=10.0, worker_timeout=3.0, backup_tasks=False)


def spec(maps: int = 2, reduces: int = 2, size: int = 100) -> JobSpec:
    return JobSpec(
        app="distlab.apps.mr.wc",
        inputs=tuple(InputFile(f"/in/{i}.txt", size) for i in range(maps)),
        reduces=reduces,
        output_dir="/out",
        split_bytes=1_000_000,
    )


def started(config: SchedulerConfig = NO_BACKUPS) -> Scheduler:
    scheduler = Scheduler(config)
    scheduler.start()
    return scheduler


def task_for(scheduler: Scheduler, worker: str, now: float) -> TaskAssignment:
    decision = scheduler.request_task(worker, f"{worker}:1", now)
    assert isinstance(decision, RunTask), decision
    return decision.task


def done(scheduler: Scheduler, worker: str, task: TaskAssignment, now: float) -> bool:
    return scheduler.report(
        TaskReport(worker, f"{worker}:1", task.job_id, task.kind, task.index, task.attempt, True),
        now,
    )


def test_maps_run_before_reduces_and_the_job_finishes() -> None:
    scheduler = started()
    job = scheduler.submit(spec(maps=2, reduces=2), submitted_at=0.0)
    first = task_for(scheduler, "w1", 0.0)
    second = task_for(scheduler, "w2", 0.0)
    assert (first.kind, first.index, second.kind, second.index) == (
        TaskKind.MAP, 0, TaskKind.MAP, 1)
    assert first.attempt != second.attempt
    # No reduce while a map is unfinished: each reducer needs every map's output.
    assert isinstance(scheduler.request_task("w3", "w3:1", 0.5), Wait)
    assert done(scheduler, "w1", first, 1.0)
    assert isinstance(scheduler.request_task("w3", "w3:1", 1.0), Wait)
    assert done(scheduler, "w2", second, 1.0)
    reduce = task_for(scheduler, "w3", 1.1)
    assert reduce.kind is TaskKind.REDUCE
    assert [(o.map_index, o.worker_id, o.address, o.attempt) for o in reduce.map_outputs] == [
        (0, "w1", "w1:1", first.attempt), (1, "w2", "w2:1", second.attempt)]
    assert scheduler.progress(job, 2.0).state is JobState.REDUCE
    other = task_for(scheduler, "w1", 1.2)
    assert done(scheduler, "w3", reduce, 2.0)
    assert done(scheduler, "w1", other, 2.0)
    progress = scheduler.progress(job, 2.0)
    assert progress.state is JobState.DONE
    assert (progress.maps_done, progress.reduces_done) == (2, 2)
    kinds = [record["type"] for record in scheduler.take_records()]
    assert kinds == ["start", "submit", "map_done", "map_done", "reduce_done", "reduce_done",
                     "job_done"]


def test_a_task_not_reported_within_the_timeout_goes_to_another_worker() -> None:
    scheduler = started()
    scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    slow = task_for(scheduler, "w1", 0.0)
    assert scheduler.get_timer() == pytest.approx(3.0)  # w1's heartbeat deadline comes first
    scheduler.heartbeat("w1", "w1:1", 8.0)
    assert isinstance(scheduler.request_task("w2", "w2:1", 9.0), Wait)
    scheduler.handle_timer(9.9)
    assert isinstance(scheduler.request_task("w2", "w2:1", 9.9), Wait)
    scheduler.handle_timer(10.0)
    again = task_for(scheduler, "w2", 10.0)
    assert (again.kind, again.index) == (TaskKind.MAP, 0)
    assert again.attempt != slow.attempt
    assert scheduler.counters.get(TaskKind.MAP, "timed_out") == 1
    # The abandoned copy finishes first after all: it wins, the second copy's report does not.
    assert done(scheduler, "w1", slow, 10.5)
    assert not done(scheduler, "w2", again, 11.0)
    assert scheduler.counters.get(TaskKind.MAP, "duplicate") == 1
    reduce = task_for(scheduler, "w2", 11.0)
    assert reduce.map_outputs[0].worker_id == "w1"


def test_a_worker_that_stops_heartbeating_loses_its_running_and_finished_maps() -> None:
    scheduler = started()
    job = scheduler.submit(spec(maps=3, reduces=1), submitted_at=0.0)
    finished = task_for(scheduler, "w1", 0.0)
    assert done(scheduler, "w1", finished, 0.5)
    running = task_for(scheduler, "w1", 0.5)
    other = task_for(scheduler, "w2", 0.5)
    for now in (1.0, 2.0, 3.0, 3.4):
        scheduler.heartbeat("w2", "w2:1", now)
        scheduler.handle_timer(now)
    assert scheduler.live_workers() == ["w1", "w2"]
    scheduler.heartbeat("w2", "w2:1", 3.5)
    scheduler.handle_timer(3.5)
    assert scheduler.live_workers() == ["w2"]
    assert scheduler.counters.get(TaskKind.MAP, "worker_lost") == 1
    assert scheduler.progress(job, 3.5).maps_reexecuted == 1
    assert done(scheduler, "w2", other, 3.5)
    rerun = {task_for(scheduler, "w2", 3.6).index}
    rerun.add(task_for(scheduler, "w3", 3.6).index)
    assert rerun == {finished.index, running.index}
    assert [r["type"] for r in scheduler.take_records()].count("map_lost") == 1


def test_backup_copies_of_the_last_running_tasks_and_the_first_finisher_wins() -> None:
    config = SchedulerConfig(task_timeout=100.0, worker_timeout=50.0, backup_tasks=True,
                             backup_fraction=0.25, backup_after=2.0)
    scheduler = started(config)
    job = scheduler.submit(spec(maps=8, reduces=1), submitted_at=0.0)
    tasks = [task_for(scheduler, f"w{i}", 0.0) for i in range(8)]
    # Three of eight still running: more than a quarter, no backups yet.
    for task in tasks[:5]:
        assert done(scheduler, f"w{task.index}", task, 1.0)
    assert isinstance(scheduler.request_task("w0", "w0:1", 3.0), Wait)
    assert done(scheduler, "w5", tasks[5], 3.0)
    # Two left, a quarter of eight: near the end. Not before a copy ran `backup_after`.
    assert isinstance(scheduler.request_task("w0", "w0:1", 1.5), Wait)
    backup = task_for(scheduler, "w0", 3.0)
    assert backup.backup and backup.kind is TaskKind.MAP and backup.index in (6, 7)
    assert backup.attempt not in {task.attempt for task in tasks}
    second_backup = task_for(scheduler, "w1", 3.0)
    assert second_backup.index in (6, 7) and second_backup.index != backup.index
    # Every remaining task has two copies now: nothing more to hand out.
    assert isinstance(scheduler.request_task("w2", "w2:1", 3.0), Wait)
    assert done(scheduler, "w0", backup, 4.0)
    assert not done(scheduler, f"w{backup.index}", tasks[backup.index], 5.0)
    progress = scheduler.progress(job, 5.0)
    assert progress.backup_attempts == 2
    assert progress.maps_done == 7
    assert scheduler.counters.get(TaskKind.MAP, "backup") == 2


def test_no_backup_copies_when_disabled() -> None:
    scheduler = started(SchedulerConfig(backup_tasks=False, worker_timeout=100.0))
    scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    task_for(scheduler, "w1", 0.0)
    assert isinstance(scheduler.request_task("w2", "w2:1", 5.0), Wait)


def test_a_failed_fetch_runs_the_map_again_and_holds_back_reduces() -> None:
    scheduler = started(SchedulerConfig(backup_tasks=False, worker_timeout=100.0))
    job = scheduler.submit(spec(maps=2, reduces=2), submitted_at=0.0)
    maps = [task_for(scheduler, "w1", 0.0), task_for(scheduler, "w2", 0.0)]
    for worker, task in zip(("w1", "w2"), maps, strict=True):
        assert done(scheduler, worker, task, 1.0)
    reduce = task_for(scheduler, "w3", 1.0)
    lost = reduce.map_outputs[1]
    # A report naming an older copy of the map changes nothing.
    stale = TaskReport("w3", "w3:1", job, TaskKind.REDUCE, reduce.index, reduce.attempt, False,
                       fetch_failures=(FetchFailure(1, "w2", lost.attempt + 1, "refused"),))
    assert scheduler.report(stale, 1.5)
    assert scheduler.progress(job, 1.5).maps_reexecuted == 0
    reduce = task_for(scheduler, "w3", 1.6)
    failure = TaskReport("w3", "w3:1", job, TaskKind.REDUCE, reduce.index, reduce.attempt, False,
                         fetch_failures=(FetchFailure(1, "w2", lost.attempt, "refused"),))
    assert scheduler.report(failure, 2.0)
    progress = scheduler.progress(job, 2.0)
    assert (progress.state, progress.maps_done, progress.maps_reexecuted) == (JobState.MAP, 1, 1)
    rerun = task_for(scheduler, "w3", 2.0)
    assert (rerun.kind, rerun.index) == (TaskKind.MAP, 1)
    assert isinstance(scheduler.request_task("w1", "w1:1", 2.1), Wait)
    assert done(scheduler, "w3", rerun, 3.0)
    reduce = task_for(scheduler, "w1", 3.0)
    assert reduce.map_outputs[1].worker_id == "w3"
    assert scheduler.counters.get(TaskKind.REDUCE, "fetch_failed") == 2


def test_a_restarted_scheduler_resumes_from_its_records() -> None:
    config = SchedulerConfig(backup_tasks=False, worker_timeout=3.0)
    before = started(config)
    job = before.submit(spec(maps=3, reduces=2), submitted_at=0.0, traceparent="00-abc-def-01")
    maps = [task_for(before, worker, 0.0) for worker in ("w1", "w2", "w3")]
    assert done(before, "w1", maps[0], 1.0)
    assert done(before, "w2", maps[1], 1.0)
    log: list[Record] = before.take_records()
    # The coordinator dies here; map 2 was running on w3 and its result never recorded.

    after = Scheduler(config)
    after.replay(log, now=100.0)
    after.start()
    assert after.epoch == 2
    assert after.traceparent(job) == "00-abc-def-01"
    progress = after.progress(job, 100.0)
    assert (progress.state, progress.maps_done, progress.reduces_done) == (JobState.MAP, 2, 0)
    # w3 reports the copy it ran for the old coordinator: accepted, the task is finished.
    assert done(after, "w3", maps[2], 100.5)
    reduce = task_for(after, "w1", 100.6)
    assert reduce.attempt > 2 * ATTEMPTS_PER_EPOCH
    assert {o.worker_id for o in reduce.map_outputs} == {"w1", "w2", "w3"}
    assert done(after, "w1", reduce, 101.0)
    log += after.take_records()

    again = Scheduler(config)
    again.replay(log, now=200.0)
    again.start()
    progress = again.progress(job, 200.0)
    assert (progress.maps_done, progress.reduces_done) == (3, 1)
    # Workers named by the log get a worker timeout to come back; w2 and w3 never do, so
    # the map output they held is written off and those maps run again.
    for now in (201.0, 202.0, 203.0):
        again.heartbeat("w1", "w1:1", now)
    again.handle_timer(203.0)
    progress = again.progress(job, 203.0)
    assert (progress.maps_done, progress.maps_reexecuted) == (1, 2)
    assert again.live_workers() == ["w1"]


def test_a_torn_job_done_is_recomputed_on_replay() -> None:
    scheduler = started()
    job = scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    assert done(scheduler, "w1", task_for(scheduler, "w1", 0.0), 0.1)
    assert done(scheduler, "w1", task_for(scheduler, "w1", 0.2), 0.3)
    log = [record for record in scheduler.take_records() if record["type"] != "job_done"]
    restored = Scheduler(NO_BACKUPS)
    restored.replay(log, now=0.0)
    restored.start()
    assert restored.progress(job, 1.0).state is JobState.DONE
    assert [r["type"] for r in restored.take_records()] == ["job_done", "start"]


def test_jobs_run_one_at_a_time_in_order_of_submission() -> None:
    scheduler = started()
    first = scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    second = scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    assert scheduler.progress(second, 0.0).state is JobState.QUEUED
    task = task_for(scheduler, "w1", 0.0)
    assert task.job_id == first
    assert isinstance(scheduler.request_task("w2", "w2:1", 0.0), Wait)
    assert done(scheduler, "w1", task, 0.1)
    assert done(scheduler, "w1", task_for(scheduler, "w1", 0.1), 0.2)
    assert scheduler.progress(first, 0.2).state is JobState.DONE
    assert task_for(scheduler, "w2", 0.2).job_id == second
    assert scheduler.finished_jobs() == [first]


def test_a_task_that_keeps_failing_fails_its_job() -> None:
    scheduler = started(SchedulerConfig(max_task_failures=2, backup_tasks=False))
    job = scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    for now in (0.0, 1.0):
        task = task_for(scheduler, "w1", now)
        failure = TaskReport("w1", "w1:1", job, TaskKind.MAP, 0, task.attempt, False,
                             error="ZeroDivisionError: division by zero")
        assert scheduler.report(failure, now + 0.5)
    progress = scheduler.progress(job, 2.0)
    assert progress.state is JobState.FAILED
    assert "map task 0 failed 2 times: ZeroDivisionError" in progress.error


def test_workers_are_told_to_exit_only_when_every_job_is_over() -> None:
    scheduler = started(SchedulerConfig(exit_when_idle=True, backup_tasks=False))
    assert isinstance(scheduler.request_task("w1", "w1:1", 0.0), Wait)
    scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    assert scheduler.heartbeat("w2", "w2:1", 0.0)
    assert done(scheduler, "w1", task_for(scheduler, "w1", 0.0), 0.1)
    assert done(scheduler, "w1", task_for(scheduler, "w1", 0.1), 0.2)
    # Each worker told is a change the coordinator sees (it exits once all are told), and
    # telling one again is not.
    version = scheduler.version
    assert isinstance(scheduler.request_task("w1", "w1:1", 0.3), Exit)
    assert not scheduler.every_worker_told_to_exit
    assert scheduler.version > version
    version = scheduler.version
    assert not scheduler.heartbeat("w2", "w2:1", 0.3)
    assert scheduler.every_worker_told_to_exit
    assert scheduler.version > version
    version = scheduler.version
    assert not scheduler.heartbeat("w2", "w2:1", 0.4)
    assert scheduler.version == version


def test_bad_reports_are_counted_not_fatal() -> None:
    scheduler = started()
    job = scheduler.submit(spec(maps=1, reduces=1), submitted_at=0.0)
    task_for(scheduler, "w1", 0.0)
    bogus = TaskReport("w1", "w1:1", job, TaskKind.MAP, 7, 1, True)
    assert not scheduler.report(bogus, 0.1)
    unknown = TaskReport("w1", "w1:1", job + 5, TaskKind.MAP, 0, 1, True)
    assert not scheduler.report(unknown, 0.1)
    assert scheduler.counters.get(TaskKind.MAP, "rejected") == 1
    assert scheduler.counters.get(TaskKind.MAP, "stale") == 1


def test_invalid_jobs_are_refused() -> None:
    scheduler = started()
    with pytest.raises(InvalidJob, match="at least one reduce"):
        scheduler.submit(spec(reduces=0), submitted_at=0.0)
    with pytest.raises(InvalidJob, match="no input"):
        scheduler.submit(JobSpec("wc", (), 1, "/out", 10), submitted_at=0.0)


@pytest.mark.parametrize("seed", range(20))
def test_jobs_finish_despite_random_crashes_and_stalls(seed: int) -> None:
    """The crash application's failure model on virtual time: each task copy crashes its
    worker (restarted under a new id), stalls past the timeout, or finishes. Whatever the
    seed, the job finishes and every reduce saw a complete set of live map outputs."""
    rng = random.Random(seed)
    config = SchedulerConfig(task_timeout=2.0, worker_timeout=1.0, backup_after=0.5)
    scheduler = started(config)
    job = scheduler.submit(spec(maps=8, reduces=10), submitted_at=0.0)
    generation = {slot: 0 for slot in range(3)}
    busy: dict[int, tuple[TaskAssignment, float, str]] = {}
    now = 0.0
    for _step in range(20_000):
        if scheduler.progress(job, now).state is JobState.DONE:
            break
        now += 0.1
        for slot in range(3):
            worker = f"s{slot}g{generation[slot]}"
            if slot in busy:
                task, finish_at, fate = busy[slot]
                if fate == "crash" and now >= finish_at:
                    del busy[slot]
                    generation[slot] += 1  # the test harness restarts it under a new name
                    continue
                scheduler.heartbeat(worker, worker, now)
                if now < finish_at:
                    continue
                del busy[slot]
                if task.kind is TaskKind.REDUCE:
                    dead = [o for o in task.map_outputs if not o.worker_id.endswith(
                        f"g{generation[int(o.worker_id[1])]}")]
                    if dead:
                        failures = tuple(FetchFailure(o.map_index, o.worker_id, o.attempt)
                                         for o in dead)
                        scheduler.report(TaskReport(worker, worker, job, task.kind, task.index,
                                                    task.attempt, False,
                                                    fetch_failures=failures), now)
                        continue
                done(scheduler, worker, task, now)
                continue
            decision = scheduler.request_task(worker, worker, now)
            if isinstance(decision, RunTask):
                roll = rng.random()
                fate = "crash" if roll < 0.33 else "stall" if roll < 0.66 else "ok"
                duration = rng.uniform(0.0, 10.0) if fate == "stall" else 0.2
                busy[slot] = (decision.task, now + duration, fate)
        scheduler.handle_timer(now)
    progress = scheduler.progress(job, now)
    assert progress.state is JobState.DONE, progress
    assert progress.reduces_done == 10
