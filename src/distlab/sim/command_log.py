"""The lab testers' state machine: a record of every command applied, by index.

Shared by the protocols' lab scenarios (Raft's 6.5840 tester, the 6.824 Paxos lab), which
ask what each server applied at each index and whether they agree.
"""

from __future__ import annotations

import json


class CommandLog:
    """Implements `StateMachine`: every command applied, by index, as the lab records it."""

    def __init__(self) -> None:
        self.commands: dict[int, bytes] = {}
        self.applied_index = 0

    def apply(self, index: int, command: bytes) -> bytes:
        assert index > self.applied_index, "commands are applied in index order"
        self.applied_index = index
        self.commands[index] = command
        return b""

    def snapshot(self) -> bytes:
        body = {"applied": self.applied_index,
                "commands": {str(index): data.hex() for index, data in self.commands.items()}}
        return json.dumps(body, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        body = json.loads(data)
        self.applied_index = int(body["applied"])
        self.commands = {int(index): bytes.fromhex(data)
                         for index, data in body["commands"].items()}
