"""A replica's role in the chain, and what each role does, as a table.

The role follows from the configuration alone (`role_in`); what a replica may do in it is a
row of `ROLES`, so that the core asks the table rather than testing roles one by one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType

from distlab.core.ids import NodeId
from distlab.protocols.chain.messages import ChainConfig


class Role(enum.Enum):
    HEAD = "head"
    MIDDLE = "middle"
    TAIL = "tail"
    # The head and the tail at once: a chain of one.
    SOLE = "sole"
    JOINING = "joining"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class Duties:
    # Takes clients' writes and numbers them.
    assigns: bool
    # Takes updates from a predecessor.
    receives: bool
    # Applies what it holds as committed, and acknowledges it upstream.
    commits: bool
    # Answers reads: "tail" (committed state, CR and CRAQ), "clean" (CRAQ, asking the tail
    # about dirty keys), or "" (none).
    reads: str
    # Counts as a member whose history the chain's invariants compare.
    member: bool


ROLES = MappingProxyType({
    Role.HEAD: Duties(assigns=True, receives=False, commits=False, reads="clean", member=True),
    Role.MIDDLE: Duties(assigns=False, receives=True, commits=False, reads="clean", member=True),
    Role.TAIL: Duties(assigns=False, receives=True, commits=True, reads="tail", member=True),
    Role.SOLE: Duties(assigns=True, receives=False, commits=True, reads="tail", member=True),
    Role.JOINING: Duties(assigns=False, receives=True, commits=False, reads="", member=False),
    Role.OUT: Duties(assigns=False, receives=False, commits=False, reads="", member=False),
})


def role_in(config: ChainConfig, node: NodeId) -> Role:
    if node == config.joining:
        return Role.JOINING
    if node not in config.chain:
        return Role.OUT
    if len(config.chain) == 1:
        return Role.SOLE
    if node == config.head:
        return Role.HEAD
    if node == config.tail:
        return Role.TAIL
    return Role.MIDDLE
