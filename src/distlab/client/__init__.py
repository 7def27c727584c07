"""Clients of a distlab cluster's services.

`KVClient` talks to the replicated KV store, whose keys and values are byte strings (given as
`bytes`, or as `str` standing for their UTF-8 bytes). Its failures say whether the operation
took effect: `Definite` (it did not) or `Indefinite` (it may have). `AdminClient` sends
membership changes and leadership transfers to each group's leader, found the same way
(`LeaderDirectory`). `TxnClient` runs 2PC and 3PC transactions.
"""

from distlab.client._admin import AdminClient, AdminError
from distlab.client._errors import (
    Definite,
    Indefinite,
    InvalidRequest,
    KVError,
    Rejected,
    Unavailable,
    Unreachable,
)
from distlab.client._kv import KVClient
from distlab.client._leaders import LeaderDirectory
from distlab.client._txn import NodeTransactions, TxnClient, TxnResult

__all__ = [
    "AdminClient",
    "AdminError",
    "Definite",
    "Indefinite",
    "InvalidRequest",
    "KVClient",
    "KVError",
    "LeaderDirectory",
    "NodeTransactions",
    "Rejected",
    "TxnClient",
    "TxnResult",
    "Unavailable",
    "Unreachable",
]
