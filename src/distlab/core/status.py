"""What a consensus engine reports about itself, for Admin, metrics and `distlab status`."""

from dataclasses import dataclass

from distlab.core.ids import NO_NODE, NodeId


@dataclass(frozen=True, slots=True)
class EngineStatus:
    role: str
    term: int
    leader_id: NodeId
    commit_index: int
    applied_index: int


IDLE = EngineStatus(role="none", term=0, leader_id=NO_NODE, commit_index=0, applied_index=0)
"""The status of a node that runs no consensus engine."""
