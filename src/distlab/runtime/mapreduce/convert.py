"""Between the scheduler core's dataclasses and the wire's protobuf messages."""

from __future__ import annotations

from distlab.proto import mapreduce_pb2 as pb
from distlab.protocols.mapreduce import (
    FetchFailure,
    JobState,
    MapOutput,
    Progress,
    Split,
    TaskAssignment,
    TaskKind,
    TaskReport,
)

KIND_TO_PB = {TaskKind.MAP: pb.TASK_KIND_MAP, TaskKind.REDUCE: pb.TASK_KIND_REDUCE}
KIND_FROM_PB = {value: key for key, value in KIND_TO_PB.items()}
STATE_TO_PB = {
    JobState.QUEUED: pb.JOB_STATE_QUEUED,
    JobState.MAP: pb.JOB_STATE_MAP,
    JobState.REDUCE: pb.JOB_STATE_REDUCE,
    JobState.DONE: pb.JOB_STATE_DONE,
    JobState.FAILED: pb.JOB_STATE_FAILED,
}
STATE_NAMES = {value: key.value for key, value in STATE_TO_PB.items()}
FINISHED_STATES = (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED)


def task_to_pb(task: TaskAssignment) -> pb.Task:
    message = pb.Task(
        job_id=task.job_id, kind=KIND_TO_PB[task.kind], index=task.index, attempt=task.attempt,
        app=task.app, reduces=task.reduces, output_dir=task.output_dir,
        traceparent=task.traceparent,
    )
    if task.split is not None:
        message.input_path = task.split.path
        message.input_offset = task.split.offset
        message.input_length = task.split.length
        message.input_whole_file = task.split.whole_file
    for output in task.map_outputs:
        message.map_outputs.add(
            map_index=output.map_index, worker_id=output.worker_id, address=output.address,
            attempt=output.attempt,
        )
    return message


def task_from_pb(message: pb.Task) -> TaskAssignment:
    kind = KIND_FROM_PB[message.kind]
    split = None
    if kind is TaskKind.MAP:
        split = Split(message.input_path, message.input_offset, message.input_length,
                      message.input_whole_file)
    return TaskAssignment(
        job_id=message.job_id, kind=kind, index=message.index, attempt=message.attempt,
        app=message.app, reduces=message.reduces, output_dir=message.output_dir,
        traceparent=message.traceparent, split=split,
        map_outputs=tuple(
            MapOutput(o.map_index, o.worker_id, o.address, o.attempt) for o in message.map_outputs
        ),
    )


def report_from_pb(message: pb.ReportTaskRequest) -> TaskReport | None:
    """The report, or None when its task kind is unknown (a bad peer message)."""
    kind = KIND_FROM_PB.get(message.kind)
    if kind is None:
        return None
    return TaskReport(
        worker_id=message.worker_id, address=message.address, job_id=message.job_id, kind=kind,
        index=message.index, attempt=message.attempt, success=message.success,
        error=message.error,
        fetch_failures=tuple(
            FetchFailure(f.map_index, f.worker_id, f.attempt, f.error)
            for f in message.fetch_failures
        ),
    )


def progress_to_pb(progress: Progress) -> pb.JobProgress:
    return pb.JobProgress(
        job_id=progress.job_id, state=STATE_TO_PB[progress.state],
        maps_done=progress.maps_done, maps_total=progress.maps_total,
        reduces_done=progress.reduces_done, reduces_total=progress.reduces_total,
        input_bytes=progress.input_bytes, map_bytes_done=progress.map_bytes_done,
        elapsed_seconds=progress.elapsed_seconds, output_dir=progress.output_dir,
        error=progress.error, maps_reexecuted=progress.maps_reexecuted,
        map_attempts=progress.map_attempts, reduce_attempts=progress.reduce_attempts,
        backup_attempts=progress.backup_attempts, app=progress.app,
    )
