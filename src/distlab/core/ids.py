"""Identifiers shared by every protocol."""

from typing import NewType

NodeId = NewType("NodeId", int)
"""A cluster member's id: a positive integer, stable across restarts."""

NO_NODE = NodeId(0)
"""Stands for "no node": no leader known, no vote cast."""
