"""The sans-I/O vocabulary every protocol core shares: ids and quorum arithmetic."""

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.quorum import has_quorum, majority, quorum_index

__all__ = ["NO_NODE", "NodeId", "has_quorum", "majority", "quorum_index"]
