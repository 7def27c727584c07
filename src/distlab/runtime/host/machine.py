"""The host's own state kept in every group's log beside the application's.

Commands are wrapped in a one-byte envelope so that the host can keep records of its own in
the replicated log: the address book (members added at run time announce their address
through the log, so every member, and a member restarted from a snapshot, can reach them),
group 0's chain master, and a group's transaction records. Snapshots carry the recorded
addresses (and those machines' snapshots) in a small header before the application's state.
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
# A command of the chain's master, which group 0 keeps beside the application's state.
CHAIN_MASTER = b"C"
# Transaction records of a group that is a transaction participant (its shard's commits).
TXN_RECORDS = b"T"
# Format 2 keeps only the recorded addresses ("recorded"); format 1 kept every address the
# node knew ("addresses"), its start-up list included, and is still read.
SNAPSHOT_FORMAT = 2
OLD_SNAPSHOT_FORMATS = (1,)


class AddressBook:
    """Every member's address, shared by all the instances of a node.

    Two sources, and the log wins: the start-up list (CLUSTER_NODES) says where the members
    are as this node was told at start, and the address records of the log (a member added
    at run time announces its address there) say where the cluster itself last recorded a
    member. Only the records travel in snapshots: a snapshot that carried the start-up list
    too would bring back, after a restart on other ports, the addresses of the previous run.
    """

    def __init__(self, configured: Mapping[NodeId, str],
                 on_learn: Callable[[NodeId, str], None] = lambda node, address: None) -> None:
        self._configured = dict(configured)
        self._recorded: dict[NodeId, str] = {}
        self._on_learn = on_learn

    def get(self, node: NodeId) -> str | None:
        return self._recorded.get(node) or self._configured.get(node)

    def items(self) -> list[tuple[NodeId, str]]:
        return sorted({**self._configured, **self._recorded}.items())

    def recorded(self) -> list[tuple[NodeId, str]]:
        """The addresses the log recorded, which a snapshot keeps."""
        return sorted(self._recorded.items())

    def learn(self, node: NodeId, address: str) -> None:
        """`node` is at `address`, as a record of the log says: that wins from now on."""
        before = self.get(node)
        self._recorded[node] = address
        if before != address:
            self._on_learn(node, address)

    def learn_if_unknown(self, node: NodeId, address: str) -> None:
        """`node` was at `address` when an old snapshot was taken (one that kept every address
        without telling the recorded ones apart): a fallback only, for a node no other source
        names."""
        if self.get(node) is None:
            self.learn(node, address)


def app_command(command: bytes) -> bytes:
    return APP_COMMAND + command


def chain_master_command(command: bytes) -> bytes:
    return CHAIN_MASTER + command


def txn_records_command(command: bytes) -> bytes:
    return TXN_RECORDS + command


def member_address_record(node: NodeId, address: str) -> bytes:
    return MEMBER_ADDRESS + json.dumps({"id": int(node), "address": address}).encode()


class HostedMachine:
    """An application's state machine wrapped with the host's records (envelope, header)."""

    def __init__(self, machine: StateMachine, addresses: AddressBook,
                 chain_master: StateMachine | None = None,
                 txn_log: StateMachine | None = None) -> None:
        self.machine = machine
        self.addresses = addresses
        # Group 0's: the chain's configuration (its snapshot rides in the header).
        self.chain_master = chain_master
        # The group's transaction records, as a participant (its snapshot rides there too).
        self.txn_log = txn_log

    def apply(self, index: int, envelope: bytes) -> bytes:
        tag, body = envelope[:1], envelope[1:]
        if tag == APP_COMMAND:
            return self.machine.apply(index, body)
        if tag == CHAIN_MASTER and self.chain_master is not None:
            return self.chain_master.apply(index, body)
        if tag == TXN_RECORDS and self.txn_log is not None:
            return self.txn_log.apply(index, body)
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
        fields: dict[str, object] = {
            "format": SNAPSHOT_FORMAT,
            "recorded": {str(node): address for node, address in self.addresses.recorded()},
        }
        if self.chain_master is not None:
            fields["chain_master"] = self.chain_master.snapshot().decode()
        if self.txn_log is not None:
            fields["txn_log"] = self.txn_log.snapshot().decode()
        header = json.dumps(fields).encode()
        return len(header).to_bytes(4, "big") + header + self.machine.snapshot()

    def restore(self, data: bytes) -> None:
        """Raises ValueError when `data` is not a snapshot this host can read."""
        size = int.from_bytes(data[:4], "big")
        try:
            header = json.loads(data[4 : 4 + size])
        except ValueError as error:
            raise ValueError(f"unreadable snapshot header: {error}") from error
        found = header.get("format") if isinstance(header, dict) else None
        if found == SNAPSHOT_FORMAT:
            addresses, learn = header.get("recorded"), self.addresses.learn
        elif found in OLD_SNAPSHOT_FORMATS:
            addresses, learn = header.get("addresses"), self.addresses.learn_if_unknown
        else:
            raise ValueError(f"snapshot format {found} is not {SNAPSHOT_FORMAT}")
        if not isinstance(addresses, dict):
            raise ValueError(f"snapshot header of format {found} lists no addresses")
        for node_text, address in addresses.items():
            learn(NodeId(int(node_text)), str(address))
        chain_master = header.get("chain_master")
        if self.chain_master is not None and isinstance(chain_master, str):
            self.chain_master.restore(chain_master.encode())
        txn_log = header.get("txn_log")
        if self.txn_log is not None and isinstance(txn_log, str):
            self.txn_log.restore(txn_log.encode())
        self.machine.restore(data[4 + size :])
