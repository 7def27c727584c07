from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_KIND_UNSPECIFIED: _ClassVar[TaskKind]
    TASK_KIND_MAP: _ClassVar[TaskKind]
    TASK_KIND_REDUCE: _ClassVar[TaskKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_MAP: _ClassVar[JobState]
    JOB_STATE_REDUCE: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_RUN: _ClassVar[Action]
    ACTION_WAIT: _ClassVar[Action]
    ACTION_EXIT: _ClassVar[Action]
TASK_KIND_UNSPECIFIED: TaskKind
TASK_KIND_MAP: TaskKind
TASK_KIND_REDUCE: TaskKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_MAP: JobState
JOB_STATE_REDUCE: JobState
JOB_STATE_DONE: JobState
JOB_STATE_FAILED: JobState
ACTION_UNSPECIFIED: Action
ACTION_RUN: Action
ACTION_WAIT: Action
ACTION_EXIT: Action

class JobSpec(_message.Message):
    __slots__ = ("app", "inputs", "reduces", "output_dir", "split_bytes")
    APP_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REDUCES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    SPLIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    app: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    reduces: int
    output_dir: str
    split_bytes: int
    def __init__(self, app: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., reduces: _Optional[int] = ..., output_dir: _Optional[str] = ..., split_bytes: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id", "queued_behind")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUED_BEHIND_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    queued_behind: int
    def __init__(self, job_id: _Optional[int] = ..., queued_behind: _Optional[int] = ...) -> None: ...

class JobStatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    def __init__(self, job_id: _Optional[int] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("job_id", "state", "maps_done", "maps_total", "reduces_done", "reduces_total", "input_bytes", "map_bytes_done", "elapsed_seconds", "output_dir", "error", "maps_reexecuted", "map_attempts", "reduce_attempts", "backup_attempts", "app")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MAPS_DONE_FIELD_NUMBER: _ClassVar[int]
    MAPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REDUCES_DONE_FIELD_NUMBER: _ClassVar[int]
    REDUCES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    INPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAP_BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MAPS_REEXECUTED_FIELD_NUMBER: _ClassVar[int]
    MAP_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    job_id: int
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
    app: str
    def __init__(self, job_id: _Optional[int] = ..., state: _Optional[_Union[JobState, str]] = ..., maps_done: _Optional[int] = ..., maps_total: _Optional[int] = ..., reduces_done: _Optional[int] = ..., reduces_total: _Optional[int] = ..., input_bytes: _Optional[int] = ..., map_bytes_done: _Optional[int] = ..., elapsed_seconds: _Optional[float] = ..., output_dir: _Optional[str] = ..., error: _Optional[str] = ..., maps_reexecuted: _Optional[int] = ..., map_attempts: _Optional[int] = ..., reduce_attempts: _Optional[int] = ..., backup_attempts: _Optional[int] = ..., app: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    def __init__(self, job_id: _Optional[int] = ...) -> None: ...

class MapOutputLocation(_message.Message):
    __slots__ = ("map_index", "worker_id", "address", "attempt")
    MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    map_index: int
    worker_id: str
    address: str
    attempt: int
    def __init__(self, map_index: _Optional[int] = ..., worker_id: _Optional[str] = ..., address: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("job_id", "kind", "index", "attempt", "app", "reduces", "output_dir", "input_path", "input_offset", "input_length", "input_whole_file", "map_outputs", "traceparent")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    REDUCES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    INPUT_PATH_FIELD_NUMBER: _ClassVar[int]
    INPUT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    INPUT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_WHOLE_FILE_FIELD_NUMBER: _ClassVar[int]
    MAP_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    kind: TaskKind
    index: int
    attempt: int
    app: str
    reduces: int
    output_dir: str
    input_path: str
    input_offset: int
    input_length: int
    input_whole_file: bool
    map_outputs: _containers.RepeatedCompositeFieldContainer[MapOutputLocation]
    traceparent: str
    def __init__(self, job_id: _Optional[int] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., index: _Optional[int] = ..., attempt: _Optional[int] = ..., app: _Optional[str] = ..., reduces: _Optional[int] = ..., output_dir: _Optional[str] = ..., input_path: _Optional[str] = ..., input_offset: _Optional[int] = ..., input_length: _Optional[int] = ..., input_whole_file: _Optional[bool] = ..., map_outputs: _Optional[_Iterable[_Union[MapOutputLocation, _Mapping]]] = ..., traceparent: _Optional[str] = ...) -> None: ...

class RequestTaskRequest(_message.Message):
    __slots__ = ("worker_id", "address")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class RequestTaskResponse(_message.Message):
    __slots__ = ("action", "task", "retry_after_seconds")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    action: Action
    task: Task
    retry_after_seconds: float
    def __init__(self, action: _Optional[_Union[Action, str]] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., retry_after_seconds: _Optional[float] = ...) -> None: ...

class FetchFailure(_message.Message):
    __slots__ = ("map_index", "worker_id", "attempt", "error")
    MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    map_index: int
    worker_id: str
    attempt: int
    error: str
    def __init__(self, map_index: _Optional[int] = ..., worker_id: _Optional[str] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class ReportTaskRequest(_message.Message):
    __slots__ = ("worker_id", "address", "job_id", "kind", "index", "attempt", "success", "error", "fetch_failures", "output_bytes", "request_next")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FETCH_FAILURES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_NEXT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    job_id: int
    kind: TaskKind
    index: int
    attempt: int
    success: bool
    error: str
    fetch_failures: _containers.RepeatedCompositeFieldContainer[FetchFailure]
    output_bytes: int
    request_next: bool
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., job_id: _Optional[int] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., index: _Optional[int] = ..., attempt: _Optional[int] = ..., success: _Optional[bool] = ..., error: _Optional[str] = ..., fetch_failures: _Optional[_Iterable[_Union[FetchFailure, _Mapping]]] = ..., output_bytes: _Optional[int] = ..., request_next: _Optional[bool] = ...) -> None: ...

class ReportTaskResponse(_message.Message):
    __slots__ = ("accepted", "next")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    next: RequestTaskResponse
    def __init__(self, accepted: _Optional[bool] = ..., next: _Optional[_Union[RequestTaskResponse, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "address")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("action", "finished_jobs", "interval_seconds")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FINISHED_JOBS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    action: Action
    finished_jobs: _containers.RepeatedScalarFieldContainer[int]
    interval_seconds: float
    def __init__(self, action: _Optional[_Union[Action, str]] = ..., finished_jobs: _Optional[_Iterable[int]] = ..., interval_seconds: _Optional[float] = ...) -> None: ...

class FetchPartitionRequest(_message.Message):
    __slots__ = ("job_id", "map_index", "attempt", "reduce_index")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REDUCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    map_index: int
    attempt: int
    reduce_index: int
    def __init__(self, job_id: _Optional[int] = ..., map_index: _Optional[int] = ..., attempt: _Optional[int] = ..., reduce_index: _Optional[int] = ...) -> None: ...

class PartitionChunk(_message.Message):
    __slots__ = ("data", "total_bytes", "last")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    last: bool
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...
