"""Multi-Paxos as a sans-I/O core (Paxos Made Moderately Complex, in one member).

Drive a `MultiPaxos` with `tick()`, `step(message)` and requests (`propose_batch`,
`read_index`, `compact`, `campaign`); take its output with `ready()`, persist, send and apply
it in that order (`sends_before_persist` names the messages that may leave before the
persist), then call `advance()`. It offers `distlab.core.consensus.ConsensusCore`, as the
Raft core does, so one driver hosts either.

`BUG_CATALOGUE` lists the known mistakes `Config.planted_bugs` can plant in the core, for a
simulator to prove that it finds them.
"""

from distlab.protocols.multipaxos.bugs import CATALOGUE as BUG_CATALOGUE
from distlab.protocols.multipaxos.config import Config, RandomSource
from distlab.protocols.multipaxos.messages import (
    ZERO_BALLOT,
    Accept,
    Accepted,
    AcceptedReply,
    Ballot,
    CatchUp,
    Commit,
    CommitReply,
    Decision,
    Decisions,
    Entry,
    InstallSnapshot,
    Message,
    Prepare,
    Promise,
    Snapshot,
    SnapshotMeta,
    Value,
    describe,
    is_request,
)
from distlab.protocols.multipaxos.paxos import MultiPaxos
from distlab.protocols.multipaxos.state import Proposal, ReadState, Ready, Role, Status
from distlab.protocols.multipaxos.storage import MemoryStorage, Storage

__all__ = [
    "BUG_CATALOGUE",
    "ZERO_BALLOT",
    "Accept",
    "Accepted",
    "AcceptedReply",
    "Ballot",
    "CatchUp",
    "Commit",
    "CommitReply",
    "Config",
    "Decision",
    "Decisions",
    "Entry",
    "InstallSnapshot",
    "MemoryStorage",
    "Message",
    "MultiPaxos",
    "Prepare",
    "Promise",
    "Proposal",
    "RandomSource",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "Status",
    "Storage",
    "Value",
    "describe",
    "is_request",
]
