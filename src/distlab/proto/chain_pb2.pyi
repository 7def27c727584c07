from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChainReadMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAIN_READ_MODE_CR: _ClassVar[ChainReadMode]
    CHAIN_READ_MODE_CRAQ: _ClassVar[ChainReadMode]
CHAIN_READ_MODE_CR: ChainReadMode
CHAIN_READ_MODE_CRAQ: ChainReadMode

class ChainUpdate(_message.Message):
    __slots__ = ("seq", "key", "value", "client", "request")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    seq: int
    key: bytes
    value: bytes
    client: int
    request: int
    def __init__(self, seq: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., client: _Optional[int] = ..., request: _Optional[int] = ...) -> None: ...

class ChainWriterMark(_message.Message):
    __slots__ = ("client", "request", "seq")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    client: int
    request: int
    seq: int
    def __init__(self, client: _Optional[int] = ..., request: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class ChainForward(_message.Message):
    __slots__ = ("epoch", "sender", "recipient", "updates", "sender_last")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    SENDER_LAST_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sender: int
    recipient: int
    updates: _containers.RepeatedCompositeFieldContainer[ChainUpdate]
    sender_last: int
    def __init__(self, epoch: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., updates: _Optional[_Iterable[_Union[ChainUpdate, _Mapping]]] = ..., sender_last: _Optional[int] = ...) -> None: ...

class ChainAck(_message.Message):
    __slots__ = ("epoch", "sender", "recipient", "received", "committed", "synced", "need_state")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    NEED_STATE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sender: int
    recipient: int
    received: int
    committed: int
    synced: bool
    need_state: bool
    def __init__(self, epoch: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., received: _Optional[int] = ..., committed: _Optional[int] = ..., synced: _Optional[bool] = ..., need_state: _Optional[bool] = ...) -> None: ...

class ChainStateTransfer(_message.Message):
    __slots__ = ("epoch", "sender", "recipient", "versions", "last", "digest", "writers")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    WRITERS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sender: int
    recipient: int
    versions: _containers.RepeatedCompositeFieldContainer[ChainUpdate]
    last: int
    digest: int
    writers: _containers.RepeatedCompositeFieldContainer[ChainWriterMark]
    def __init__(self, epoch: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[ChainUpdate, _Mapping]]] = ..., last: _Optional[int] = ..., digest: _Optional[int] = ..., writers: _Optional[_Iterable[_Union[ChainWriterMark, _Mapping]]] = ...) -> None: ...

class ChainVersionQuery(_message.Message):
    __slots__ = ("epoch", "sender", "recipient", "query", "key")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sender: int
    recipient: int
    query: int
    key: bytes
    def __init__(self, epoch: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., query: _Optional[int] = ..., key: _Optional[bytes] = ...) -> None: ...

class ChainVersionReply(_message.Message):
    __slots__ = ("epoch", "sender", "recipient", "query", "key", "seq")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    sender: int
    recipient: int
    query: int
    key: bytes
    seq: int
    def __init__(self, epoch: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., query: _Optional[int] = ..., key: _Optional[bytes] = ..., seq: _Optional[int] = ...) -> None: ...

class ChainMessage(_message.Message):
    __slots__ = ("forward", "ack", "state_transfer", "version_query", "version_reply")
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    STATE_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    VERSION_QUERY_FIELD_NUMBER: _ClassVar[int]
    VERSION_REPLY_FIELD_NUMBER: _ClassVar[int]
    forward: ChainForward
    ack: ChainAck
    state_transfer: ChainStateTransfer
    version_query: ChainVersionQuery
    version_reply: ChainVersionReply
    def __init__(self, forward: _Optional[_Union[ChainForward, _Mapping]] = ..., ack: _Optional[_Union[ChainAck, _Mapping]] = ..., state_transfer: _Optional[_Union[ChainStateTransfer, _Mapping]] = ..., version_query: _Optional[_Union[ChainVersionQuery, _Mapping]] = ..., version_reply: _Optional[_Union[ChainVersionReply, _Mapping]] = ...) -> None: ...

class ChainWriteRequest(_message.Message):
    __slots__ = ("key", "value", "client_id", "request")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    client_id: int
    request: int
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., client_id: _Optional[int] = ..., request: _Optional[int] = ...) -> None: ...

class ChainWriteResponse(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class ChainReadRequest(_message.Message):
    __slots__ = ("key", "mode")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    mode: ChainReadMode
    def __init__(self, key: _Optional[bytes] = ..., mode: _Optional[_Union[ChainReadMode, str]] = ...) -> None: ...

class ChainReadResponse(_message.Message):
    __slots__ = ("found", "value", "seq", "how")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HOW_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    seq: int
    how: str
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., seq: _Optional[int] = ..., how: _Optional[str] = ...) -> None: ...

class ChainStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChainStatusResponse(_message.Message):
    __slots__ = ("epoch", "chain", "joining", "node", "role", "sent", "applied")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    JOINING_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    chain: _containers.RepeatedScalarFieldContainer[int]
    joining: int
    node: int
    role: str
    sent: int
    applied: int
    def __init__(self, epoch: _Optional[int] = ..., chain: _Optional[_Iterable[int]] = ..., joining: _Optional[int] = ..., node: _Optional[int] = ..., role: _Optional[str] = ..., sent: _Optional[int] = ..., applied: _Optional[int] = ...) -> None: ...

class ChainSubmitRequest(_message.Message):
    __slots__ = ("command",)
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    command: bytes
    def __init__(self, command: _Optional[bytes] = ...) -> None: ...

class ChainSubmitResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: bytes
    def __init__(self, result: _Optional[bytes] = ...) -> None: ...
