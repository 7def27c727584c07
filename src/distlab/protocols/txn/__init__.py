"""Two- and three-phase commit as sans-I/O cores (DESIGN §16).

`TxnNode` is one node's coordinator and participant behind one Ready: feed it `tick()`,
`step(message)` and `begin(txn, priority, ops, protocol)`; persist `ready().records`
(fsync), then send `ready().messages`, then report `ready().outcomes`, then `advance()`.
The states and their transitions are tables (`states`); operations are parsed by `parse_op`.
"""

from distlab.protocols.txn.bugs import CATALOGUE as BUG_CATALOGUE
from distlab.protocols.txn.bugs import TIMESTAMP_CATALOGUE as TIMESTAMP_BUG_CATALOGUE
from distlab.protocols.txn.bugs import PlantedBugs
from distlab.protocols.txn.config import (
    InDoubt,
    Outcome,
    Timeouts,
    TxnConfig,
    TxnReady,
    TxnStore,
    VersionedStore,
)
from distlab.protocols.txn.locks import LockTable
from distlab.protocols.txn.messages import (
    COORDINATOR_ROUND,
    Decision,
    DecisionAck,
    Inquire,
    Message,
    PreDecide,
    PreDecideAck,
    Prepare,
    Protocol,
    SnapshotRead,
    SnapshotReadReply,
    StateReply,
    StateRequest,
    Vote,
    describe,
    is_request,
)
from distlab.protocols.txn.node import TxnNode
from distlab.protocols.txn.ops import LockMode, Op, OpKind, evaluate, parse_op
from distlab.protocols.txn.records import CorruptTxnRecord, LogRecord, RecordKind, decode
from distlab.protocols.txn.states import CoordinatorState, ParticipantState

__all__ = [
    "BUG_CATALOGUE",
    "COORDINATOR_ROUND",
    "TIMESTAMP_BUG_CATALOGUE",
    "CoordinatorState",
    "CorruptTxnRecord",
    "Decision",
    "DecisionAck",
    "InDoubt",
    "Inquire",
    "LockMode",
    "LockTable",
    "LogRecord",
    "Message",
    "Op",
    "OpKind",
    "Outcome",
    "ParticipantState",
    "PlantedBugs",
    "PreDecide",
    "PreDecideAck",
    "Prepare",
    "Protocol",
    "RecordKind",
    "SnapshotRead",
    "SnapshotReadReply",
    "StateReply",
    "StateRequest",
    "Timeouts",
    "TxnConfig",
    "TxnNode",
    "TxnReady",
    "TxnStore",
    "VersionedStore",
    "Vote",
    "decode",
    "describe",
    "evaluate",
    "is_request",
    "parse_op",
]
