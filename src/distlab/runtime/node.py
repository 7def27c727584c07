"""A cluster member: the host of its replicated groups, served on one gRPC port (Admin, Peer,
KV, health and reflection) with /metrics on a second, through the one server start-up."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from distlab.apps.kv import KVStateMachine
from distlab.apps.txn_log import TxnLogMachine
from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.core.truetime import NS_PER_MS, TrueTime
from distlab.proto import (
    admin_pb2,
    admin_pb2_grpc,
    chain_pb2,
    chain_pb2_grpc,
    kv_pb2,
    kv_pb2_grpc,
    peer_pb2,
    peer_pb2_grpc,
    txn_pb2,
    txn_pb2_grpc,
)
from distlab.protocols.chain import (
    ChainMaster,
    ChainReplica,
    LeaseMonitor,
    ReplicaConfig,
)
from distlab.protocols.multipaxos import describe as describe_paxos
from distlab.protocols.raft import describe as describe_raft
from distlab.protocols.txn import CorruptTxnRecord
from distlab.runtime.chain.driver import ChainDriver
from distlab.runtime.chain.node_ports import (
    CHAIN_GROUP,
    CHAIN_PEER_CODEC,
    NodeMasterPort,
)
from distlab.runtime.chain.storage import ChainWalStorage
from distlab.runtime.config import ConfigError, NodeConfig
from distlab.runtime.grpc.admin import AdminServicer
from distlab.runtime.grpc.chain import ChainCollector, ChainServicer
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.grpc.kv import KVServicer, Shard
from distlab.runtime.grpc.txn import TxnServicer
from distlab.runtime.heap import settle_heap
from distlab.runtime.host.driver import Timing
from distlab.runtime.host.group_transport import GroupReceiver, GroupTransport
from distlab.runtime.host.host import Host
from distlab.runtime.host.machine import AddressBook
from distlab.runtime.host.ports import LoopClock
from distlab.runtime.host.sync import SharedSync
from distlab.runtime.paxos.group import ENGINE as PAXOS
from distlab.runtime.paxos.group import PaxosGroup, PaxosTiming
from distlab.runtime.paxos.group_transport import PAXOS_PEER_CODEC
from distlab.runtime.paxos.storage import PaxosDurableStorage
from distlab.runtime.peer import PeerClock, PeerRouter, PeerServicer, PeerTransport, ShivizLog
from distlab.runtime.raft.group import RaftGroup, RaftTiming
from distlab.runtime.raft.group_transport import RAFT_PEER_CODEC
from distlab.runtime.raft.storage import DurableStorage
from distlab.runtime.server import Server, run_until_signalled
from distlab.runtime.txn.driver import DEFAULT_TICK_SECONDS, TxnDriver
from distlab.runtime.txn.groups import GroupParticipants
from distlab.runtime.txn.wiring import build_group_participants, build_txn
from distlab.storage import FileSharedLog, NodeStorage, StorageError, open_node_storage
from distlab.telemetry.metrics import GroupStatusCollector
from distlab.telemetry.tracing import setup_tracing
from distlab.telemetry.truetime import TrueTimeCollector

log = logging.getLogger(__name__)

# A request without a deadline still gets an answer when its group has no quorum: its
# proposal or read barrier fails as timed out (DEADLINE_EXCEEDED) after this long.
REQUEST_WAIT_SECONDS = 30.0
# The longest a leader holds its next batch for the writers its last one answered (see
# `Driver._batch_committed`), a fifth of a default tick. Measured on 3 nodes, one group:
# under 64 writers batches grew from 6 entries to 48 and writes/s from 2,500 to 5,100
# (3 ms: 4,100; 5 ms: 4,800), under 8 writers from 1,300 to 2,150 at half the latency;
# three groups under 64 writers gained less (2,600 to 3,500: each group's batches are a
# third as large); a lone writer never waits.
BATCH_WAIT_SECONDS = 0.010


def service_name(config: NodeConfig) -> str:
    return f"node-{config.node_id}"


class StartupError(Exception):
    """The node cannot start on what it found (damaged durable state); one line says why."""


def node_clock(config: NodeConfig) -> LoopClock:
    """The node's Clock port: real time, its wall clock off by CLOCK_SKEW_MS."""
    return LoopClock(round(config.clock_skew_ms * NS_PER_MS))


def build_host(config: NodeConfig, stores: NodeStorage, peer: PeerTransport, router: PeerRouter,
               machines: Sequence[StateMachine],
               on_failure: Callable[[BaseException], None],
               clock: LoopClock | None = None,
               chain_master: StateMachine | None = None,
               txn_logs: Sequence[StateMachine] = ()) -> Host:
    """One group of the configured engine per machine, each on its share of `stores`, routed
    through `router`, on `clock` (by default, `node_clock(config)`); each group keeps its
    `txn_logs` machine (when given) beside its shard.

    Raises ValueError when a group's stored state cannot be read (or is another engine's).
    """
    addresses = AddressBook({node: str(address) for node, address in config.cluster.items()},
                            on_learn=peer.learn_address)
    groups: list[RaftGroup | PaxosGroup] = []
    shared_sync = SharedSync(
        stores.sync, lambda: stores.shared_log.written_seq,
        leads_any=lambda: any(group.driver.status().role == "leader" for group in groups),
        writers=len(machines))
    driver_timing = Timing(tick_seconds=config.raft_tick_ms / 1000,
                           snapshot_entries=config.snapshot_entries,
                           wait_seconds=REQUEST_WAIT_SECONDS,
                           batch_wait_seconds=BATCH_WAIT_SECONDS)
    voters = frozenset() if config.join else frozenset(config.cluster)
    clock = clock if clock is not None else node_clock(config)
    paxos = config.engine == PAXOS
    codec = PAXOS_PEER_CODEC if paxos else RAFT_PEER_CODEC
    if peer.clock is not None:
        describe = describe_paxos if paxos else describe_raft
        peer.clock.describe_with(codec.service,
                                 lambda payload: describe(codec.decode(payload)))
    for index, machine in enumerate(machines):
        group_stores = stores.group(index)
        transport = partial(GroupTransport, peer, codec, index)
        # Group 0 keeps the chain's master beside its KV shard.
        master = chain_master if index == 0 else None
        txn_log = txn_logs[index] if txn_logs else None
        group: RaftGroup | PaxosGroup
        if paxos:
            group = PaxosGroup.build(
                node_id=config.node_id, group=index, voters=voters,
                storage=PaxosDurableStorage(group_stores.log, group_stores.stable,
                                            group_stores.snapshots, shared_sync, voters),
                machine=machine, addresses=addresses, chain_master=master, txn_log=txn_log,
                transport=transport,
                clock=clock, rng=random.Random(), on_failure=on_failure,
                timing=PaxosTiming(driver=driver_timing,
                                   election_ticks=config.raft_election_ticks))
        else:
            group = RaftGroup.build(
                node_id=config.node_id, group=index, voters=voters,
                storage=DurableStorage(group_stores.log, group_stores.stable,
                                       group_stores.snapshots, shared_sync),
                machine=machine, addresses=addresses, chain_master=master, txn_log=txn_log,
                transport=transport,
                clock=clock, rng=random.Random(), on_failure=on_failure,
                timing=RaftTiming(driver=driver_timing,
                                  election_ticks=config.raft_election_ticks))
        GroupReceiver(config.node_id, codec, group.driver.deliver).register(router, index)
        groups.append(group)
    # One listener for the node: a peer that cannot be reached is unreachable for every
    # group, so each group's core stops streaming appends into the dead connection.
    drivers = [group.driver for group in groups]

    def report_unreachable(node: NodeId) -> None:
        for driver in drivers:
            driver.report_unreachable(node)

    peer.add_unreachable_listener(report_unreachable)
    return Host(config.node_id, config.engine, groups, addresses, peer)


# A replica serves reads for 8 ticks after asking for a renewal (0.4 s at the default 50 ms
# tick); the master removes one silent for 40 ticks: five times longer, more than the worst
# disagreement in rate of two clocks that keep within a factor of two of each other.
CHAIN_LEASE_TICKS = 8
CHAIN_REMOVAL_TICKS = 40


def group_driver(host: Host, group: int) -> Any:
    """The driver of `group` (its replicated log, state machine and status)."""
    hosted = host.groups[group]
    assert isinstance(hosted, RaftGroup | PaxosGroup)
    return hosted.driver


def build_chain_replica(config: NodeConfig, stores: NodeStorage, peer: PeerTransport,
                        router: PeerRouter, master: NodeMasterPort,
                        on_failure: Callable[[BaseException], None],
                        clock: LoopClock) -> ChainDriver:
    """The node's chain replica on the node's `clock`, restored from its snapshot and its
    records in the node's WAL, its messages routed through `router`, reaching the chain's
    master through `master`.

    Raises StorageError when its durable state cannot be read back."""
    shared_log = stores.shared_log
    assert isinstance(shared_log, FileSharedLog), "the chain's records live in the file WAL"
    storage = ChainWalStorage.open(
        config.data_dir, shared_log, SharedSync(stores.sync, lambda: shared_log.written_seq),
        snapshot_records=config.snapshot_entries)
    stored = storage.recovered()
    planted = frozenset({"dirty-read"}) if config.unsafe_dirty_reads else frozenset()
    if planted:
        log.warning("DISTLAB_UNSAFE_DIRTY_READS is set: CRAQ reads of dirty keys answer "
                    "uncommitted versions (for testing the tester only)")
    holder: list[ChainDriver] = []
    driver = ChainDriver(
        node_id=config.node_id,
        core=ChainReplica(ReplicaConfig(config.node_id, lease_ticks=CHAIN_LEASE_TICKS,
                                        planted_bugs=planted), stored),
        storage=storage,
        transport=GroupTransport(peer, CHAIN_PEER_CODEC, CHAIN_GROUP,
                                 lambda node, ok: holder[0].report_snapshot(node, ok)),
        master=master,
        clock=clock, tick_seconds=config.raft_tick_ms / 1000,
        # The first chain is the cluster the members started from; a member that joined
        # later proposes none (it is not in it).
        monitor=LeaseMonitor(CHAIN_REMOVAL_TICKS,
                             () if config.join else tuple(sorted(config.cluster))),
        on_failure=on_failure)
    holder.append(driver)
    GroupReceiver(config.node_id, CHAIN_PEER_CODEC, driver.deliver).register(router, CHAIN_GROUP)
    return driver


class Node:
    """The wiring of one member's services; protocol logic lives in the instances it hosts."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host: Host | None = None
        self.txn: TxnDriver | None = None
        self.machines = [KVStateMachine() for _ in range(config.groups)]
        # Each group's transaction records, whose commits write into its shard.
        self.txn_logs = [TxnLogMachine(machine.apply_writes) for machine in self.machines]
        self.group_txn: GroupParticipants | None = None
        self.clock = node_clock(config)
        # The wall clock through the node's Clock port; the sawtooth's phase on the process's
        # monotonic clock, which the metrics thread can read too (the loop's is the loop's).
        self.truetime = TrueTime(self.clock.wall_ns, time.monotonic, config.truetime_epsilon)
        self.chain_master = ChainMaster()
        self.chain: ChainDriver | None = None
        self.failed = asyncio.Event()
        self._server: Server | None = None

    def _on_group_failure(self, error: BaseException) -> None:
        log.error("node %d stops: a group's durable state can no longer be trusted (%s)",
                  self.config.node_id, error)
        self.failed.set()

    async def start(self) -> None:
        """Bind and serve; raises ConfigError when an address cannot be bound, StartupError
        when the durable state cannot be used."""
        config = self.config
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"DATA_DIR {config.data_dir}: {error.strerror}") from error
        try:
            stores = open_node_storage(config.data_dir, groups=config.groups)
        except StorageError as error:
            raise StartupError(str(error)) from error

        tracing = setup_tracing(service_name(config), config.otlp_endpoint)
        try:
            vector_clock = self._peer_clock(tracing.exporting)
        except ConfigError:
            stores.close()
            raise
        self._server = server = Server(config.listen, tracing=tracing, metrics=config.metrics)
        # Stop steps run last added first: the host stops before the transport and the stores
        # it uses, and the channels go last.
        channels = PeerChannels(config.peers, tracing.client_interceptors())
        server.on_stop(channels.close)
        server.on_stop(stores.close)
        router = PeerRouter()
        if vector_clock is not None:
            server.on_stop(vector_clock.close)
        peer = PeerTransport(config.node_id, config.groups, channels, engine=config.engine,
                             clock=vector_clock)
        server.on_stop(peer.close)
        try:
            self.host = host = build_host(config, stores, peer, router, self.machines,
                                          self._on_group_failure, clock=self.clock,
                                          chain_master=self.chain_master,
                                          txn_logs=self.txn_logs)
            # One way to the chain's master for the replica and for Admin, whose membership
            # changes of group 0 the master hears of.
            chain_master = NodeMasterPort(config.node_id, group_driver(host, 0),
                                          channels)
            self.chain = chain = build_chain_replica(config, stores, peer, router,
                                                     chain_master, self._on_group_failure,
                                                     self.clock)
        except (ValueError, StorageError) as error:
            await server.stop()
            raise StartupError(f"{config.data_dir}: cannot restore state: {error}") from error
        server.on_stop(host.stop)
        server.on_stop(chain.stop)
        try:
            self.txn = txn = build_txn(
                config, stores, peer, router, self._on_group_failure,
                isolate=lambda: host.isolate_from(frozenset(config.peers)))
        except CorruptTxnRecord as error:
            await server.stop()
            raise StartupError(f"{config.data_dir}: {error}") from error
        server.on_stop(txn.stop)
        self.group_txn = group_txn = build_group_participants(
            config, [group_driver(host, group) for group in range(config.groups)],
            self.machines, self.txn_logs, peer, router, self.clock, self.truetime)
        server.on_stop(group_txn.stop)

        server.add_service(admin_pb2.DESCRIPTOR.services_by_name["Admin"],
                           admin_pb2_grpc.add_AdminServicer_to_server,
                           AdminServicer(config, host, channels, txn, group_txn,
                                         chain_master))
        server.add_service(txn_pb2.DESCRIPTOR.services_by_name["Txn"],
                           txn_pb2_grpc.add_TxnServicer_to_server,
                           TxnServicer(txn, group_txn, DEFAULT_TICK_SECONDS))
        peer_servicer = PeerServicer(config.node_id, config.groups, router,
                                     lambda: peer.isolated_from, engine=config.engine,
                                     clock=vector_clock)
        server.add_service(peer_pb2.DESCRIPTOR.services_by_name["Peer"],
                           peer_pb2_grpc.add_PeerServicer_to_server, peer_servicer)
        server.on_drain(peer_servicer.end_streams)
        if config.unsafe_stale_reads:
            log.warning("DISTLAB_UNSAFE_STALE_READS is set: reads skip the read barrier and "
                        "may be stale (for testing the tester only)")
        shards = [Shard(group, machine)
                  for group, machine in zip(host.groups, self.machines, strict=True)]
        server.add_service(kv_pb2.DESCRIPTOR.services_by_name["KV"],
                           kv_pb2_grpc.add_KVServicer_to_server,
                           KVServicer(shards, unsafe_stale_reads=config.unsafe_stale_reads))
        server.add_collector(GroupStatusCollector(config.engine, lambda: [
            (group.group, group.status()) for group in host.groups]))
        server.add_service(chain_pb2.DESCRIPTOR.services_by_name["Chain"],
                           chain_pb2_grpc.add_ChainServicer_to_server,
                           ChainServicer(chain, group_driver(host, 0), host.addresses.get))
        server.add_collector(ChainCollector(chain))
        server.add_collector(TrueTimeCollector(self.truetime, self.clock.wall_skew_ns))
        if abs(config.clock_skew_ms) > config.truetime_epsilon.low_ms:
            log.warning("CLOCK_SKEW_MS %g is beyond TRUETIME_EPSILON_MS (%s), allowed by "
                        "CLOCK_SKEW_UNSAFE: TrueTime on this node can miss the true time",
                        config.clock_skew_ms, config.truetime_epsilon.describe())
        try:
            await server.start()
        except ConfigError:
            await server.stop()
            raise
        host.start()
        chain.start()
        txn.start()
        group_txn.start()
        log.info("node %d serving gRPC on %s, metrics on %s, %d %s group(s)",
                 config.node_id, config.listen, config.metrics, config.groups, config.engine)

    def _peer_clock(self, tracing: bool) -> PeerClock | None:
        """The node's vector clock over its peer messages: kept when they are logged or
        traced (spans carry it), not otherwise, so that it costs nothing then."""
        path = self.config.vclock_log
        if path is None and not tracing:
            return None
        try:
            log_file = ShivizLog(path) if path is not None else None
        except OSError as error:
            raise ConfigError(f"VCLOCK_LOG {path}: {error.strerror}") from error
        return PeerClock(self.config.node_id, log_file)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        log.info("node %d stopped", self.config.node_id)


async def serve_until_signalled(node: Node) -> None:
    """Run `node` until SIGTERM or SIGINT, then stop it cleanly; raises StartupError when a
    group's storage fails while it runs (the node must not go on as if its writes were safe)."""

    async def serve(stop: asyncio.Event) -> None:
        await node.start()
        settle_heap()
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(node.failed.wait())
        try:
            await asyncio.wait((stopped, failed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            failed.cancel()
            await node.stop()
        if node.failed.is_set():
            raise StartupError("a group's storage failed; the node stopped (see the log)")

    await run_until_signalled(serve)
