from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    def __init__(self, key: _Optional[bytes] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("client_id", "sequence", "key", "value")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    sequence: int
    key: bytes
    value: bytes
    def __init__(self, client_id: _Optional[int] = ..., sequence: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("client_id", "sequence", "key", "value")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    sequence: int
    key: bytes
    value: bytes
    def __init__(self, client_id: _Optional[int] = ..., sequence: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("client_id", "sequence", "key")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    sequence: int
    key: bytes
    def __init__(self, client_id: _Optional[int] = ..., sequence: _Optional[int] = ..., key: _Optional[bytes] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("found",)
    FOUND_FIELD_NUMBER: _ClassVar[int]
    found: bool
    def __init__(self, found: _Optional[bool] = ...) -> None: ...

class CompareAndSetRequest(_message.Message):
    __slots__ = ("client_id", "sequence", "key", "expected", "value")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    sequence: int
    key: bytes
    expected: bytes
    value: bytes
    def __init__(self, client_id: _Optional[int] = ..., sequence: _Optional[int] = ..., key: _Optional[bytes] = ..., expected: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class CompareAndSetResponse(_message.Message):
    __slots__ = ("ok",)
    OK_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    def __init__(self, ok: _Optional[bool] = ...) -> None: ...

class OpenSessionRequest(_message.Message):
    __slots__ = ("client_id", "group")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    group: int
    def __init__(self, client_id: _Optional[int] = ..., group: _Optional[int] = ...) -> None: ...

class OpenSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KVCommand(_message.Message):
    __slots__ = ("client_id", "sequence", "put", "append", "delete", "compare_and_set", "open_session")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    APPEND_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    COMPARE_AND_SET_FIELD_NUMBER: _ClassVar[int]
    OPEN_SESSION_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    sequence: int
    put: PutOp
    append: AppendOp
    delete: DeleteOp
    compare_and_set: CompareAndSetOp
    open_session: OpenSessionOp
    def __init__(self, client_id: _Optional[int] = ..., sequence: _Optional[int] = ..., put: _Optional[_Union[PutOp, _Mapping]] = ..., append: _Optional[_Union[AppendOp, _Mapping]] = ..., delete: _Optional[_Union[DeleteOp, _Mapping]] = ..., compare_and_set: _Optional[_Union[CompareAndSetOp, _Mapping]] = ..., open_session: _Optional[_Union[OpenSessionOp, _Mapping]] = ...) -> None: ...

class PutOp(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class AppendOp(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class DeleteOp(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    def __init__(self, key: _Optional[bytes] = ...) -> None: ...

class CompareAndSetOp(_message.Message):
    __slots__ = ("key", "expected", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    expected: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., expected: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class OpenSessionOp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KVResult(_message.Message):
    __slots__ = ("status", "ok", "detail")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[KVResult.Status]
        OK: _ClassVar[KVResult.Status]
        MALFORMED: _ClassVar[KVResult.Status]
        SESSION_EXPIRED: _ClassVar[KVResult.Status]
        STALE_SEQUENCE: _ClassVar[KVResult.Status]
        VALUE_TOO_LARGE: _ClassVar[KVResult.Status]
    STATUS_UNSPECIFIED: KVResult.Status
    OK: KVResult.Status
    MALFORMED: KVResult.Status
    SESSION_EXPIRED: KVResult.Status
    STALE_SEQUENCE: KVResult.Status
    VALUE_TOO_LARGE: KVResult.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    status: KVResult.Status
    ok: bool
    detail: str
    def __init__(self, status: _Optional[_Union[KVResult.Status, str]] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class KVSnapshotEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class KVSnapshotSession(_message.Message):
    __slots__ = ("client_id", "last_sequence", "last_result")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_RESULT_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    last_sequence: int
    last_result: bytes
    def __init__(self, client_id: _Optional[int] = ..., last_sequence: _Optional[int] = ..., last_result: _Optional[bytes] = ...) -> None: ...

class KVSnapshotBody(_message.Message):
    __slots__ = ("applied_index", "entries", "sessions")
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    applied_index: int
    entries: _containers.RepeatedCompositeFieldContainer[KVSnapshotEntry]
    sessions: _containers.RepeatedCompositeFieldContainer[KVSnapshotSession]
    def __init__(self, applied_index: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[KVSnapshotEntry, _Mapping]]] = ..., sessions: _Optional[_Iterable[_Union[KVSnapshotSession, _Mapping]]] = ...) -> None: ...
