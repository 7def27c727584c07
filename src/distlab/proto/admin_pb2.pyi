from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupStatus(_message.Message):
    __slots__ = ("group", "role", "term", "leader_id", "commit_index", "applied_index", "voters", "learners")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    group: int
    role: str
    term: int
    leader_id: int
    commit_index: int
    applied_index: int
    voters: _containers.RepeatedScalarFieldContainer[int]
    learners: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, group: _Optional[int] = ..., role: _Optional[str] = ..., term: _Optional[int] = ..., leader_id: _Optional[int] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., voters: _Optional[_Iterable[int]] = ..., learners: _Optional[_Iterable[int]] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "role", "term", "leader_id", "commit_index", "applied_index", "pid", "uptime_seconds", "version", "address", "voters", "learners", "engine", "group_count", "groups")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    GROUP_COUNT_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    role: str
    term: int
    leader_id: int
    commit_index: int
    applied_index: int
    pid: int
    uptime_seconds: float
    version: str
    address: str
    voters: _containers.RepeatedScalarFieldContainer[int]
    learners: _containers.RepeatedScalarFieldContainer[int]
    engine: str
    group_count: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupStatus]
    def __init__(self, node_id: _Optional[int] = ..., role: _Optional[str] = ..., term: _Optional[int] = ..., leader_id: _Optional[int] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., pid: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., version: _Optional[str] = ..., address: _Optional[str] = ..., voters: _Optional[_Iterable[int]] = ..., learners: _Optional[_Iterable[int]] = ..., engine: _Optional[str] = ..., group_count: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupStatus, _Mapping]]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ("timeout_seconds",)
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: float
    def __init__(self, timeout_seconds: _Optional[float] = ...) -> None: ...

class MemberStatus(_message.Message):
    __slots__ = ("node_id", "address", "up", "status", "error")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    up: bool
    status: NodeStatus
    error: str
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ..., up: _Optional[bool] = ..., status: _Optional[_Union[NodeStatus, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("answered_by", "members")
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    answered_by: int
    members: _containers.RepeatedCompositeFieldContainer[MemberStatus]
    def __init__(self, answered_by: _Optional[int] = ..., members: _Optional[_Iterable[_Union[MemberStatus, _Mapping]]] = ...) -> None: ...

class AddMemberRequest(_message.Message):
    __slots__ = ("node_id", "address", "group")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    group: int
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ..., group: _Optional[int] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("node_id", "group")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    group: int
    def __init__(self, node_id: _Optional[int] = ..., group: _Optional[int] = ...) -> None: ...

class TransferLeaderRequest(_message.Message):
    __slots__ = ("node_id", "group")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    group: int
    def __init__(self, node_id: _Optional[int] = ..., group: _Optional[int] = ...) -> None: ...

class MembershipResponse(_message.Message):
    __slots__ = ("voters", "learners", "leader_id", "groups")
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    voters: _containers.RepeatedScalarFieldContainer[int]
    learners: _containers.RepeatedScalarFieldContainer[int]
    leader_id: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupStatus]
    def __init__(self, voters: _Optional[_Iterable[int]] = ..., learners: _Optional[_Iterable[int]] = ..., leader_id: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupStatus, _Mapping]]] = ...) -> None: ...

class FaultRequest(_message.Message):
    __slots__ = ("isolate_from", "txn_faults", "set_txn_faults")
    ISOLATE_FROM_FIELD_NUMBER: _ClassVar[int]
    TXN_FAULTS_FIELD_NUMBER: _ClassVar[int]
    SET_TXN_FAULTS_FIELD_NUMBER: _ClassVar[int]
    isolate_from: _containers.RepeatedScalarFieldContainer[int]
    txn_faults: _containers.RepeatedScalarFieldContainer[str]
    set_txn_faults: bool
    def __init__(self, isolate_from: _Optional[_Iterable[int]] = ..., txn_faults: _Optional[_Iterable[str]] = ..., set_txn_faults: _Optional[bool] = ...) -> None: ...

class FaultResponse(_message.Message):
    __slots__ = ("isolated_from", "txn_faults")
    ISOLATED_FROM_FIELD_NUMBER: _ClassVar[int]
    TXN_FAULTS_FIELD_NUMBER: _ClassVar[int]
    isolated_from: _containers.RepeatedScalarFieldContainer[int]
    txn_faults: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, isolated_from: _Optional[_Iterable[int]] = ..., txn_faults: _Optional[_Iterable[str]] = ...) -> None: ...
