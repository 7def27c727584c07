from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TxnOp(_message.Message):
    __slots__ = ("kind", "key", "argument")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ARGUMENT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    key: str
    argument: str
    def __init__(self, kind: _Optional[str] = ..., key: _Optional[str] = ..., argument: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("txn_id", "protocol", "ops", "priority", "participants", "read_only", "at_ts")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    AT_TS_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    protocol: str
    ops: _containers.RepeatedCompositeFieldContainer[TxnOp]
    priority: int
    participants: str
    read_only: bool
    at_ts: int
    def __init__(self, txn_id: _Optional[str] = ..., protocol: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[TxnOp, _Mapping]]] = ..., priority: _Optional[int] = ..., participants: _Optional[str] = ..., read_only: _Optional[bool] = ..., at_ts: _Optional[int] = ...) -> None: ...

class ReadValue(_message.Message):
    __slots__ = ("key", "present", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    present: bool
    value: str
    def __init__(self, key: _Optional[str] = ..., present: _Optional[bool] = ..., value: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("outcome", "reason", "reads", "ts")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    reason: str
    reads: _containers.RepeatedCompositeFieldContainer[ReadValue]
    ts: int
    def __init__(self, outcome: _Optional[str] = ..., reason: _Optional[str] = ..., reads: _Optional[_Iterable[_Union[ReadValue, _Mapping]]] = ..., ts: _Optional[int] = ...) -> None: ...

class TxnStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnfinishedTxn(_message.Message):
    __slots__ = ("txn_id", "role", "state", "coordinator", "age_seconds", "locks", "group")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_FIELD_NUMBER: _ClassVar[int]
    AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    role: str
    state: str
    coordinator: int
    age_seconds: float
    locks: _containers.RepeatedScalarFieldContainer[str]
    group: int
    def __init__(self, txn_id: _Optional[str] = ..., role: _Optional[str] = ..., state: _Optional[str] = ..., coordinator: _Optional[int] = ..., age_seconds: _Optional[float] = ..., locks: _Optional[_Iterable[str]] = ..., group: _Optional[int] = ...) -> None: ...

class TxnStatusResponse(_message.Message):
    __slots__ = ("node_id", "transactions")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    transactions: _containers.RepeatedCompositeFieldContainer[UnfinishedTxn]
    def __init__(self, node_id: _Optional[int] = ..., transactions: _Optional[_Iterable[_Union[UnfinishedTxn, _Mapping]]] = ...) -> None: ...
