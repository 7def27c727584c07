from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaxosBallot(_message.Message):
    __slots__ = ("round", "node")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    round: int
    node: int
    def __init__(self, round: _Optional[int] = ..., node: _Optional[int] = ...) -> None: ...

class PaxosValue(_message.Message):
    __slots__ = ("noop", "command", "origin")
    NOOP_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    noop: bool
    command: bytes
    origin: PaxosBallot
    def __init__(self, noop: _Optional[bool] = ..., command: _Optional[bytes] = ..., origin: _Optional[_Union[PaxosBallot, _Mapping]] = ...) -> None: ...

class PaxosAccepted(_message.Message):
    __slots__ = ("slot", "ballot", "value")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    slot: int
    ballot: PaxosBallot
    value: PaxosValue
    def __init__(self, slot: _Optional[int] = ..., ballot: _Optional[_Union[PaxosBallot, _Mapping]] = ..., value: _Optional[_Union[PaxosValue, _Mapping]] = ...) -> None: ...

class PaxosDecision(_message.Message):
    __slots__ = ("slot", "value")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    slot: int
    value: PaxosValue
    def __init__(self, slot: _Optional[int] = ..., value: _Optional[_Union[PaxosValue, _Mapping]] = ...) -> None: ...

class PaxosPrepare(_message.Message):
    __slots__ = ("first_slot", "probe")
    FIRST_SLOT_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    first_slot: int
    probe: bool
    def __init__(self, first_slot: _Optional[int] = ..., probe: _Optional[bool] = ...) -> None: ...

class PaxosPromise(_message.Message):
    __slots__ = ("ok", "promised", "accepted", "log_start", "probe")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROMISED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    LOG_START_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    promised: PaxosBallot
    accepted: _containers.RepeatedCompositeFieldContainer[PaxosAccepted]
    log_start: int
    probe: bool
    def __init__(self, ok: _Optional[bool] = ..., promised: _Optional[_Union[PaxosBallot, _Mapping]] = ..., accepted: _Optional[_Iterable[_Union[PaxosAccepted, _Mapping]]] = ..., log_start: _Optional[int] = ..., probe: _Optional[bool] = ...) -> None: ...

class PaxosAccept(_message.Message):
    __slots__ = ("entries", "commit_index", "leader_start", "forget_through")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEADER_START_FIELD_NUMBER: _ClassVar[int]
    FORGET_THROUGH_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[PaxosDecision]
    commit_index: int
    leader_start: int
    forget_through: int
    def __init__(self, entries: _Optional[_Iterable[_Union[PaxosDecision, _Mapping]]] = ..., commit_index: _Optional[int] = ..., leader_start: _Optional[int] = ..., forget_through: _Optional[int] = ...) -> None: ...

class PaxosAcceptedReply(_message.Message):
    __slots__ = ("ok", "promised", "slots", "applied", "commit_index")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROMISED_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    promised: PaxosBallot
    slots: _containers.RepeatedScalarFieldContainer[int]
    applied: int
    commit_index: int
    def __init__(self, ok: _Optional[bool] = ..., promised: _Optional[_Union[PaxosBallot, _Mapping]] = ..., slots: _Optional[_Iterable[int]] = ..., applied: _Optional[int] = ..., commit_index: _Optional[int] = ...) -> None: ...

class PaxosCommit(_message.Message):
    __slots__ = ("commit_index", "leader_start", "forget_through", "read_round")
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEADER_START_FIELD_NUMBER: _ClassVar[int]
    FORGET_THROUGH_FIELD_NUMBER: _ClassVar[int]
    READ_ROUND_FIELD_NUMBER: _ClassVar[int]
    commit_index: int
    leader_start: int
    forget_through: int
    read_round: int
    def __init__(self, commit_index: _Optional[int] = ..., leader_start: _Optional[int] = ..., forget_through: _Optional[int] = ..., read_round: _Optional[int] = ...) -> None: ...

class PaxosCommitReply(_message.Message):
    __slots__ = ("ok", "promised", "applied", "commit_index", "read_round")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROMISED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    READ_ROUND_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    promised: PaxosBallot
    applied: int
    commit_index: int
    read_round: int
    def __init__(self, ok: _Optional[bool] = ..., promised: _Optional[_Union[PaxosBallot, _Mapping]] = ..., applied: _Optional[int] = ..., commit_index: _Optional[int] = ..., read_round: _Optional[int] = ...) -> None: ...

class PaxosCatchUp(_message.Message):
    __slots__ = ("first_slot",)
    FIRST_SLOT_FIELD_NUMBER: _ClassVar[int]
    first_slot: int
    def __init__(self, first_slot: _Optional[int] = ...) -> None: ...

class PaxosDecisions(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[PaxosDecision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[PaxosDecision, _Mapping]]] = ...) -> None: ...

class PaxosInstallSnapshot(_message.Message):
    __slots__ = ("last_index", "data")
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    last_index: int
    data: bytes
    def __init__(self, last_index: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class PaxosMessage(_message.Message):
    __slots__ = ("sender", "recipient", "ballot", "prepare", "promise", "accept", "accepted_reply", "commit", "commit_reply", "catch_up", "decisions", "install_snapshot")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    PREPARE_FIELD_NUMBER: _ClassVar[int]
    PROMISE_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_REPLY_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_REPLY_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    INSTALL_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    sender: int
    recipient: int
    ballot: PaxosBallot
    prepare: PaxosPrepare
    promise: PaxosPromise
    accept: PaxosAccept
    accepted_reply: PaxosAcceptedReply
    commit: PaxosCommit
    commit_reply: PaxosCommitReply
    catch_up: PaxosCatchUp
    decisions: PaxosDecisions
    install_snapshot: PaxosInstallSnapshot
    def __init__(self, sender: _Optional[int] = ..., recipient: _Optional[int] = ..., ballot: _Optional[_Union[PaxosBallot, _Mapping]] = ..., prepare: _Optional[_Union[PaxosPrepare, _Mapping]] = ..., promise: _Optional[_Union[PaxosPromise, _Mapping]] = ..., accept: _Optional[_Union[PaxosAccept, _Mapping]] = ..., accepted_reply: _Optional[_Union[PaxosAcceptedReply, _Mapping]] = ..., commit: _Optional[_Union[PaxosCommit, _Mapping]] = ..., commit_reply: _Optional[_Union[PaxosCommitReply, _Mapping]] = ..., catch_up: _Optional[_Union[PaxosCatchUp, _Mapping]] = ..., decisions: _Optional[_Union[PaxosDecisions, _Mapping]] = ..., install_snapshot: _Optional[_Union[PaxosInstallSnapshot, _Mapping]] = ...) -> None: ...

class PaxosAcceptedBatch(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: _containers.RepeatedCompositeFieldContainer[PaxosAccepted]
    def __init__(self, accepted: _Optional[_Iterable[_Union[PaxosAccepted, _Mapping]]] = ...) -> None: ...

class PaxosDecisionBatch(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[PaxosDecision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[PaxosDecision, _Mapping]]] = ...) -> None: ...
