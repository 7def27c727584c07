"""The host's own state kept in every group's log beside the application's.

Commands are wrapped in a one-byte envelope so that the host can keep records of its own in
the replicated log: today the address book (members added at run time announce their
address through the log, so every member, and a member restarted from a snapshot, can reach
them). Snapshots carry the address book in a small header before the application's state.
This is shared by every engine: a second engine reuses it rather than copying it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine

log = logging.getLogger(__name__)

APP_COMMAND = b"A"
MEMBER_ADDRESS = b"M"
SNAPSHOT_FORMAT = 1


class AddressBook:
    """Every member's address, shared by all the instances of a node."""

    def __init__(self, addresses: Mapping[NodeId, str],
                 on_learn: Callable[[NodeId, str], None] = lambda node, address: None) -> None:
        self._addresses = dict(addresses)
        self._on_learn = on_learn

    def get(self, node: NodeId) -> str | None:
        return self._addresses.get(node)

    def items(self) -> list[tuple[NodeId, str]]:
        return sorted(self._addresses.items())

    def learn(self, node: NodeId, address: str) -> None:
        if self._addresses.get(node) != address:
            self._addresses[node] = address
            self._on_learn(node, address)


def app_command(command: bytes) -> bytes:
    return APP_COMMAND + command


def member_address_record(node: NodeId, address: str) -> bytes:
    return MEMBER_ADDRESS + json.dumps({"id": int(node), "address": address}).encode()


class HostedMachine:
    """An application's state machine wrapped with the host's records (envelope, header)."""

    def __init__(self, machine: StateMachine, addresses: AddressBook) -> None:
        self.machine = machine
        self.addresses = addresses

    def apply(self, index: int, envelope: bytes) -> bytes:
        tag, body = envelope[:1], envelope[1:]
        if tag == APP_COMMAND:
            return self.machine.apply(index, body)
        if tag == MEMBER_ADDRESS:
            self._note_address(body)
        else:
            log.error("entry %d has unknown envelope %r; skipped", index, tag)
        return b""

    def _note_address(self, body: bytes) -> None:
        try:
            record = json.loads(body)
            node, address = NodeId(int(record["id"])), str(record["address"])
        except (ValueError, KeyError, TypeError):
            log.error("unreadable member address record %r; skipped", body)
            return
        self.addresses.learn(node, address)

    def snapshot(self) -> bytes:
        header = json.dumps({
            "format": SNAPSHOT_FORMAT,
            "addresses": {str(node): address for node, address in self.addresses.items()},
        }).encode()
        return len(header).to_bytes(4, "big") + header + self.machine.snapshot()

    def restore(self, data: bytes) -> None:
        """Raises ValueError when `data` is not a snapshot this host can read."""
        size = int.from_bytes(data[:4], "big")
        try:
            header = json.loads(data[4 : 4 + size])
        except ValueError as error:
            raise ValueError(f"unreadable snapshot header: {error}") from error
        if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise ValueError(f"snapshot format {found} is not {SNAPSHOT_FORMAT}")
        for node_text, address in header["addresses"].items():
            self.addresses.learn(NodeId(int(node_text)), str(address))
        self.machine.restore(data[4 + size :])
