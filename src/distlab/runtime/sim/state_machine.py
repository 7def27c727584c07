"""The replicated state machine of the simulation: the log of applied commands.

It keeps every applied command by index, which is exactly what the 6.5840 tester compares
across servers, and serializes itself into snapshots so that compaction and InstallSnapshot
are exercised with real data.
"""

from __future__ import annotations

import json

from distlab.protocols.raft import Entry, EntryKind, Snapshot


class CommandLog:
    def __init__(self) -> None:
        self.commands: dict[int, bytes] = {}
        self.applied_index = 0

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied_index + 1, "entries are applied in index order"
        self.applied_index = entry.index
        if entry.kind is EntryKind.NORMAL:
            self.commands[entry.index] = entry.data

    def snapshot_data(self) -> bytes:
        body = {
            "applied": self.applied_index,
            "commands": {str(index): data.hex() for index, data in self.commands.items()},
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot | None) -> CommandLog:
        machine = cls()
        if snapshot is None:
            return machine
        body = json.loads(snapshot.data)
        machine.applied_index = int(body["applied"])
        assert machine.applied_index == snapshot.meta.last_index
        machine.commands = {
            int(index): bytes.fromhex(data) for index, data in body["commands"].items()
        }
        return machine
