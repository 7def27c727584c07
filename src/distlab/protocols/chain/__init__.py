"""Chain replication (van Renesse & Schneider) with CRAQ's reads, as a sans-I/O core.

Drive a `ChainReplica` with `tick()`, `step(message)`, `configure(config)` (the master's
configuration), `lease_granted(tick)` and the clients' `write` and `read`; take its output
with `ready()`, persist, send, answer and ask the master in that order, then `advance()`.
`ChainMaster` is the master: the configuration as a deterministic state machine for a
consensus group. `BUG_CATALOGUE` lists the mistakes `ReplicaConfig.planted_bugs` plants.
"""

from distlab.protocols.chain.bugs import CATALOGUE as BUG_CATALOGUE
from distlab.protocols.chain.durable import (
    StoredReplica,
    decode_snapshot,
    encode_snapshot,
    recover,
)
from distlab.protocols.chain.master import (
    ChainMaster,
    admit_command,
    decode_result,
    init_command,
    join_command,
    promote_command,
    remove_command,
    renew_command,
    retire_command,
)
from distlab.protocols.chain.messages import (
    MESSAGE_TYPES,
    Ack,
    ChainConfig,
    Forward,
    Message,
    StateTransfer,
    Update,
    VersionQuery,
    VersionReply,
    WriterMark,
    describe,
    is_request,
)
from distlab.protocols.chain.monitor import LeaseMonitor
from distlab.protocols.chain.replica import (
    ChainReplica,
    MasterCall,
    MasterRequest,
    Outcome,
    Problem,
    ReadMode,
    Ready,
    ReplicaConfig,
    Reply,
)
from distlab.protocols.chain.roles import ROLES, Duties, Role, role_in

__all__ = [
    "BUG_CATALOGUE", "MESSAGE_TYPES", "ROLES", "Ack", "ChainConfig", "ChainMaster",
    "ChainReplica", "Duties", "Forward", "LeaseMonitor", "MasterCall", "MasterRequest",
    "Message", "Outcome", "Problem", "ReadMode", "Ready", "ReplicaConfig", "Reply", "Role",
    "StateTransfer", "StoredReplica", "Update", "VersionQuery", "VersionReply", "WriterMark",
    "admit_command", "decode_result", "decode_snapshot", "describe", "encode_snapshot",
    "init_command", "is_request", "join_command", "promote_command", "recover",
    "remove_command", "renew_command", "retire_command", "role_in",
]
