"""Durable records of the coordinator's job table, as JSON-ready dictionaries.

Only what cannot be recomputed is recorded: the coordinator's restarts (which number its task
attempts), submitted jobs, finished tasks and finished jobs. Running tasks are not recorded:
after a restart a report from any copy of an unfinished task is accepted, and tasks nobody
reports are handed out again.
"""

from __future__ import annotations

from typing import Any

from distlab.protocols.mapreduce._model import InputFile, JobSpec

Record = dict[str, Any]

START = "start"
SUBMIT = "submit"
MAP_DONE = "map_done"
MAP_LOST = "map_lost"
REDUCE_DONE = "reduce_done"
JOB_DONE = "job_done"
JOB_FAILED = "job_failed"

RECORD_TYPES = frozenset({START, SUBMIT, MAP_DONE, MAP_LOST, REDUCE_DONE, JOB_DONE, JOB_FAILED})


def spec_to_record(spec: JobSpec) -> dict[str, Any]:
    return {
        "app": spec.app,
        "inputs": [[item.path, item.size] for item in spec.inputs],
        "reduces": spec.reduces,
        "output_dir": spec.output_dir,
        "split_bytes": spec.split_bytes,
    }


def spec_from_record(data: dict[str, Any]) -> JobSpec:
    return JobSpec(
        app=str(data["app"]),
        inputs=tuple(InputFile(str(path), int(size)) for path, size in data["inputs"]),
        reduces=int(data["reduces"]),
        output_dir=str(data["output_dir"]),
        split_bytes=int(data["split_bytes"]),
    )
