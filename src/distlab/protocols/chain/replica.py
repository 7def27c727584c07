"""One chain replica as a sans-I/O core (chain replication, with CRAQ's apportioned reads).

Inputs: `tick()`, `step(message)` from a neighbour, `configure(config)` from the master,
`lease_granted(tick)` when a lease renewal the core asked for was applied, and the clients'
`write` and `read`. Output: `ready()` says what to persist, what to send, which clients to
answer and what to ask the master; the caller persists, sends, answers, asks, then calls
`advance()`. Nothing leaves before what it depends on is durable.

The head numbers each write and forwards it; every replica keeps what it forwarded and has
not seen acknowledged (`Sent`, the updates above `acked`) and resends the part its
successor lacks whenever the successor reports its position (after a reconfiguration, after
a loss); the tail applies, and its acknowledgement travels back up the chain, committing the
update at every replica on the way and answering the client at the head. Links are made
FIFO here: a replica takes an update only if it is the next one, so a lost or overtaken
message is repaired by the successor's next report.

A client names each write (its client id and a request number that only grows), and every
replica remembers, from its history, each client's newest write: a head that is asked for a
write it holds already answers it as the first attempt's (at once if committed, else when it
commits) instead of numbering it again, so a client's retry after a lost answer or a failed
head is applied at most once; an older request than the newest is refused as stale.

Every message carries the epoch, and a replica refuses those of an older one. A replica
serves reads only while its lease (renewed through the master) holds, so that one the
master removed has stopped answering before a new chain can commit without it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from distlab.core.ids import NodeId
from distlab.protocols.chain import durable
from distlab.protocols.chain.bugs import PlantedBugs
from distlab.protocols.chain.durable import StoredReplica, digest_after, update_record
from distlab.protocols.chain.messages import (
    Ack,
    ChainConfig,
    Forward,
    Message,
    StateTransfer,
    Update,
    VersionQuery,
    VersionReply,
    WriterMark,
)
from distlab.protocols.chain.roles import ROLES, Role, role_in

# How far a replica runs ahead of its successor's acknowledged position.
WINDOW = 256
# How many clients' newest writes a replica remembers: past it, those whose newest write is
# oldest are forgotten (a retry of theirs would be numbered again, which only a client silent
# through that many others' writes could meet).
WRITER_MEMORY = 10_000


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    node_id: NodeId
    # A read is served only this many ticks after the renewal that granted the lease was
    # asked for; the master removes a replica only after a much longer silence.
    lease_ticks: int = 12
    renew_ticks: int = 3
    # A successor reports its position this often even when nothing arrives.
    heartbeat_ticks: int = 2
    # Without progress for this long, a replica resends from its successor's position.
    retransmit_ticks: int = 4
    # A CRAQ version query unanswered this long fails its read (definitely).
    query_ticks: int = 20
    max_batch: int = 32
    planted_bugs: frozenset[str] = frozenset()


class Outcome(enum.Enum):
    OK = "ok"
    # Definite: nothing happened; `hint` names the head where known.
    NOT_HEAD = "not-head"
    # Definite: this replica does not serve that now (no lease, not caught up, no tail).
    NOT_SERVING = "not-serving"
    # Indefinite: the write may have happened.
    UNKNOWN = "unknown"
    # Definite for this attempt: the client has a newer write than this one, so this one is
    # not applied now (an earlier attempt of it may have been).
    STALE = "stale-request"


class ReadMode(enum.Enum):
    CR = "cr"
    CRAQ = "craq"


class Problem(Exception):
    """A client request this replica refuses at once (definitely)."""

    def __init__(self, outcome: Outcome, why: str, hint: NodeId | None = None) -> None:
        super().__init__(why)
        self.outcome = outcome
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Reply:
    request: int
    outcome: Outcome
    value: bytes | None = None
    # A write's sequence number; the version a read returned (0: never written).
    seq: int = 0
    # A read: "tail" (answered by the tail), "clean" (a clean version), "dirty" (a dirty key,
    # after asking the tail).
    how: str = ""
    why: str = ""


class MasterCall(enum.Enum):
    RENEW = "renew"
    JOIN = "join"
    PROMOTE = "promote"


@dataclass(frozen=True, slots=True)
class MasterRequest:
    call: MasterCall
    epoch: int
    # The tick the request was made at: a renewal's lease runs from it.
    tick: int


@dataclass(frozen=True, slots=True)
class Ready:
    persist: tuple[tuple[int, bytes], ...] = ()
    messages: tuple[Message, ...] = ()
    replies: tuple[Reply, ...] = ()
    master: tuple[MasterRequest, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.persist or self.messages or self.replies or self.master)


@dataclass(slots=True)
class _Link:
    """The stream of updates to the downstream replica in this epoch."""

    peer: NodeId
    next_send: int
    # The lowest sequence number this link may send (where it started).
    floor: int
    received: int
    synced: bool = False
    idle_ticks: int = 0


@dataclass(slots=True)
class _Query:
    request: int
    key: bytes
    asked_at: int


@dataclass(slots=True)
class Counters:
    """What the replica refused: peer messages of an older epoch (by sender), configurations
    of an older epoch (the master's news arriving late), and messages otherwise out of place
    (a newer epoch not yet known here, a sender that is not this replica's neighbour)."""

    stale_messages: dict[NodeId, int] = field(default_factory=dict)
    stale_configs: int = 0
    refused_other: int = 0

    @property
    def refused_stale(self) -> int:
        return sum(self.stale_messages.values()) + self.stale_configs


class ChainReplica:
    def __init__(self, config: ReplicaConfig, stored: StoredReplica) -> None:
        self.node_id = config.node_id
        self._config = config
        self._bugs = PlantedBugs.from_names(config.planted_bugs)
        self.epoch = stored.epoch
        # What its records replay to: the highest epoch it recorded (an older configuration,
        # adopted only by a planted bug, records a lower one).
        self._recorded_epoch = stored.epoch
        self.chain = ChainConfig(stored.epoch, ())
        self.role = Role.OUT
        self.last = stored.base
        # Everything up to here is applied at the tail (clean, in CRAQ's words).
        self.committed = 0
        # What the downstream member acknowledged as committed: `Sent` is what lies above.
        self.acked = 0
        # The latest position the downstream replica reported: nothing above it is dropped.
        self._downstream_received = stored.base
        self.ticks = 0
        self.lease_until = -1
        # A replica that finds itself out of the chain asks to rejoin (a restarted one that
        # is still in it resumes its place: what it holds is durable, a prefix of its
        # predecessor's history and a superset of its successor's).
        self.must_join = False
        # The predecessor's position at the first message of this epoch; caught up once
        # `last` reaches it.
        self._sync_target: int | None = None
        self._transferred = False
        self._versions: dict[bytes, list[tuple[int, bytes]]] = {
            key: [version] for key, version in stored.latest.items()}
        self._log: dict[int, Update] = {}
        # Each client's newest write in this replica's history, by client.
        self._writers: dict[int, WriterMark] = dict(stored.writers)
        self._digests: dict[int, int] = {stored.base: stored.base_digest}
        self._link: _Link | None = None
        # The requests waiting for the update at each seq (a retry joins the first attempt).
        self._pending_writes: dict[int, list[int]] = {}
        self._queries: dict[int, _Query] = {}
        self._next_query = 1
        self._upstream_quiet = 0
        self.counters = Counters()
        self._persist: list[tuple[int, bytes]] = []
        self._messages: list[Message] = []
        self._replies: list[Reply] = []
        self._master: list[MasterRequest] = []
        for update in stored.updates:
            self._take(update)

    # ------------------------------------------------------------------ what others read

    @property
    def synced(self) -> bool:
        """Caught up with the predecessor's position of this epoch (a head always is)."""
        if not ROLES[self.role].receives:
            return ROLES[self.role].assigns
        return self._sync_target is not None and self.last >= self._sync_target

    @property
    def sent(self) -> int:
        """How many updates this replica holds that its successor has not acknowledged."""
        return self.last - self.acked if self._downstream() is not None else 0

    def digest_at(self, seq: int) -> int | None:
        return self._digests.get(seq)

    def value_of(self, key: bytes) -> tuple[int, bytes] | None:
        """The newest version this replica holds of `key`, dirty or clean."""
        versions = self._versions.get(key)
        return versions[-1] if versions else None

    def lease_valid(self) -> bool:
        return self.ticks < self.lease_until

    def durable_state(self) -> StoredReplica:
        """What a restart needs of everything this replica recorded so far, for a snapshot
        that replaces those records: its state as of the oldest update it still keeps, and
        every update since. What lies below, it dropped already: its successor holds it and
        the tail applied it, so no resend can ask for it."""
        base = min(self._log) - 1 if self._log else self.last
        assert len(self._log) == self.last - base, \
            f"n{self.node_id} keeps a history with holes above {base}"
        latest = {}
        for key, versions in self._versions.items():
            for seq, value in reversed(versions):
                if seq <= base:
                    latest[key] = (seq, value)
                    break
        # The writers as of `last`, not `base`: a client's mark only moves forward, so
        # replaying the updates above `base` over them changes nothing.
        return StoredReplica(
            epoch=self._recorded_epoch, base=base, base_digest=self._digests[base],
            latest=latest, writers=dict(self._writers),
            updates=[self._log[seq] for seq in range(base + 1, self.last + 1)],
            restarted=True)

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        self.ticks += 1
        duties = ROLES[self.role]
        if self.ticks % self._config.renew_ticks == 0:
            self._ask_master(MasterCall.RENEW)
            if self.must_join:
                self._ask_master(MasterCall.JOIN)
            elif self.role is Role.JOINING and self._transferred and self.synced:
                self._ask_master(MasterCall.PROMOTE)
        if duties.receives and not self.must_join:
            self._upstream_quiet += 1
            if self._upstream_quiet >= self._config.heartbeat_ticks:
                self._report_upstream()
        link = self._link
        if link is not None:
            link.idle_ticks += 1
            stalled = link.next_send > link.received + 1
            if stalled and link.idle_ticks >= self._config.retransmit_ticks:
                link.next_send = max(link.floor, link.received + 1)
                link.idle_ticks = 0
                self._pump()
        for query_id, query in list(self._queries.items()):
            if self.ticks - query.asked_at >= self._config.query_ticks:
                del self._queries[query_id]
                self._answer_read_failure(query.request, "the tail did not answer")

    def configure(self, config: ChainConfig) -> None:
        """The master's configuration (from a renewal's answer, or the node's copy of the
        master): adopted if newer, refused if older."""
        if config == self.chain or not config.chain:
            return  # the same, or the master before its first chain
        if config.epoch < self.epoch and not self._bugs.stale_epoch_accepted:
            self.counters.stale_configs += 1
            return
        if config.epoch == self.epoch and self.chain.chain:
            return  # one epoch, one configuration
        self._adopt(config)

    def lease_granted(self, tick: int) -> None:
        """A renewal asked for at `tick` was applied by the master."""
        self.lease_until = max(self.lease_until, tick + self._config.lease_ticks)

    def step(self, message: Message) -> None:
        if message.epoch != self.epoch:
            stale = message.epoch < self.epoch
            if not (stale and self._bugs.stale_epoch_accepted):
                # A newer epoch: the master's news has not reached this replica yet; the
                # sender repeats itself.
                if stale:
                    stale_messages = self.counters.stale_messages
                    stale_messages[message.sender] = stale_messages.get(message.sender, 0) + 1
                else:
                    self.counters.refused_other += 1
                return
        if self.must_join:
            # Restarted, or removed: it takes part again once it rejoins.
            return
        if isinstance(message, Forward):
            self._on_forward(message)
        elif isinstance(message, Ack):
            self._on_ack(message)
        elif isinstance(message, StateTransfer):
            self._on_transfer(message)
        elif isinstance(message, VersionQuery):
            self._on_query(message)
        else:
            self._on_version(message)

    def write(self, request: int, key: bytes, value: bytes, client: int = 0,
              client_request: int = 0) -> int:
        """A client's write, at the head: numbered, made durable, forwarded; `client` and
        `client_request` name it (0: unnamed, never recognised as a retry). Raises Problem
        when this replica cannot take it. Returns the write's sequence number; the answer
        comes as a Reply once the tail has applied it."""
        if not ROLES[self.role].assigns or self.must_join:
            raise Problem(Outcome.NOT_HEAD, f"n{self.node_id} is not the head",
                          self.chain.head)
        if not self.lease_valid():
            raise Problem(Outcome.NOT_SERVING, f"n{self.node_id} holds no lease")
        mark = self._writers.get(client) if client else None
        if mark is not None and not self._bugs.forget_writers:
            if client_request == mark.request:
                return self._answer_retry(request, mark.seq)
            if client_request < mark.request:
                raise Problem(Outcome.STALE, f"client {client} has written request "
                              f"{mark.request} since request {client_request}")
        if len(self._pending_writes) >= WINDOW:
            raise Problem(Outcome.NOT_SERVING, "too many writes in flight")
        update = Update(self.last + 1, key, value, client, client_request if client else 0)
        self._append(update)
        self._pending_writes[update.seq] = [request]
        if self._bugs.reply_before_tail:
            del self._pending_writes[update.seq]
            self._replies.append(Reply(request, Outcome.OK, seq=update.seq))
        if ROLES[self.role].commits:
            self._commit_upto(self.last)
        self._pump()
        return update.seq

    def _answer_retry(self, request: int, seq: int) -> int:
        """A write this replica holds already, at `seq`: answered as its first attempt."""
        if seq <= self.committed:
            self._replies.append(Reply(request, Outcome.OK, seq=seq))
        else:
            self._pending_writes.setdefault(seq, []).append(request)
        return seq

    def read(self, request: int, key: bytes, mode: ReadMode) -> None:
        """A client's read; the answer comes as a Reply. Raises Problem when this replica
        cannot serve it."""
        duties = ROLES[self.role]
        if mode is ReadMode.CR and duties.reads != "tail":
            raise Problem(Outcome.NOT_SERVING, f"n{self.node_id} is not the tail",
                          self.chain.tail)
        if not duties.reads or self.must_join:
            raise Problem(Outcome.NOT_SERVING, f"n{self.node_id} is {self.role.value}")
        if not self.lease_valid():
            raise Problem(Outcome.NOT_SERVING, f"n{self.node_id} holds no lease")
        if not self.synced:
            raise Problem(Outcome.NOT_SERVING, f"n{self.node_id} is catching up")
        versions = self._versions.get(key)
        newest = versions[-1] if versions else None
        if duties.reads == "tail":
            self._answer_read(request, newest, "tail")
            return
        if newest is None or newest[0] <= self.committed:
            self._answer_read(request, newest, "clean")
            return
        if self._bugs.dirty_read:
            self._answer_read(request, newest, "dirty")
            return
        tail = self.chain.tail
        assert tail is not None and tail != self.node_id
        query_id = self._next_query
        self._next_query += 1
        self._queries[query_id] = _Query(request, key, self.ticks)
        self._messages.append(VersionQuery(self.epoch, self.node_id, tail, query_id, key))

    # ------------------------------------------------------------------ output

    def ready(self) -> Ready:
        return Ready(tuple(self._persist), tuple(self._messages), tuple(self._replies),
                     tuple(self._master))

    def has_ready(self) -> bool:
        return bool(self._persist or self._messages or self._replies or self._master)

    def advance(self) -> None:
        self._persist.clear()
        self._messages.clear()
        self._replies.clear()
        self._master.clear()

    # ------------------------------------------------------------------ configuration

    def _adopt(self, config: ChainConfig) -> None:
        self.epoch = config.epoch
        self._recorded_epoch = max(self._recorded_epoch, config.epoch)
        self.chain = config
        self.role = role_in(config, self.node_id)
        self._persist.append((durable.EPOCH, durable.encode_epoch(config.epoch)))
        duties = ROLES[self.role]
        if not duties.assigns and self._pending_writes:
            # Numbered here, maybe forwarded: whether the new chain applies them is unknown.
            for requests in self._pending_writes.values():
                self._replies.extend(Reply(request, Outcome.UNKNOWN,
                                           why=f"n{self.node_id} is no longer the head")
                                     for request in requests)
            self._pending_writes.clear()
        for query in self._queries.values():
            self._answer_read_failure(query.request, "the chain was reconfigured")
        self._queries.clear()
        if self.role is Role.OUT:
            self.must_join = True
        elif self.role is Role.JOINING:
            self.must_join = False
        elif self.must_join and self.role is Role.SOLE:
            # The master keeps a chain's last replica: its own state is the chain's.
            self.must_join = False
        self._transferred = False
        self._sync_target = None
        # Every epoch starts a new link, from the successor's report of its position.
        self._link = None
        if self._downstream() is None:
            self.acked = self.last
        if duties.commits and not duties.receives:
            self._commit_upto(self.last)
        if duties.receives and not self.must_join:
            self._report_upstream()

    def _downstream(self) -> NodeId | None:
        if self.role in (Role.OUT, Role.JOINING):
            return None
        return self.chain.successor(self.node_id)

    def _upstream(self) -> NodeId | None:
        return self.chain.predecessor(self.node_id) if ROLES[self.role].receives else None

    # ------------------------------------------------------------------ messages

    def _on_forward(self, message: Forward) -> None:
        if message.sender != self._upstream():
            self.counters.refused_other += 1
            return
        if self.role is Role.JOINING and not self._transferred:
            return
        first_of_epoch = self._sync_target is None
        if first_of_epoch:
            self._sync_target = message.sender_last
        before = self.last
        for update in message.updates:
            if update.seq <= self.last:
                continue
            if update.seq != self.last + 1:
                break  # a gap: the next report of our position makes the predecessor resend
            self._append(update)
        if ROLES[self.role].commits and self.synced:
            self._commit_upto(self.last)
        if self.last > before or first_of_epoch:
            self._report_upstream()
        self._pump()

    def _on_ack(self, message: Ack) -> None:
        downstream = self._downstream()
        if message.sender != downstream:
            self.counters.refused_other += 1
            return
        if message.need_state:
            if ROLES[self.role].commits and self.synced:
                self._send_transfer(downstream)
            return
        assert message.received <= self.last or self._bugs.stale_epoch_accepted, \
            f"n{message.sender} reports update {message.received}, beyond n{self.node_id}'s " \
            f"last {self.last}: update propagation is broken"
        member = downstream != self.chain.joining
        link = self._link
        if link is None:
            start = message.received + 1
            if self._bugs.skip_resend:
                start = max(start, self.last + 1)
            # In-process requests: what the successor lacks is still here to resend.
            assert start > self._prune_floor() or start > self.last, \
                f"n{self.node_id} cannot resend from {start}: it kept only above " \
                f"{self._prune_floor()}"
            link = self._link = _Link(downstream, start, start, message.received)
            if member:
                self.acked = min(message.committed, self.last)
        if message.received > link.received:
            link.received = message.received
            link.idle_ticks = 0
        self._downstream_received = link.received
        link.synced = message.synced
        if link.next_send <= message.received:
            link.next_send = message.received + 1
        if member:
            # A member's acknowledgement: what it says is committed, is.
            self.acked = max(self.acked, min(message.committed, self.last))
            self._commit_upto(min(message.committed, self.last))
        self._pump(reply_to_unsynced=not message.synced)
        self._prune()

    def _on_transfer(self, message: StateTransfer) -> None:
        if self.role is not Role.JOINING or message.sender != self._upstream():
            self.counters.refused_other += 1
            return
        if self._transferred:
            return
        self._transferred = True
        self._upstream_quiet = 0
        self._versions = {version.key: [(version.seq, version.value)]
                          for version in message.versions}
        self._log.clear()
        self._downstream_received = message.last
        self.last = message.last
        self.committed = message.last
        self.acked = message.last
        self._digests = {message.last: message.digest}
        self._writers = {mark.client: mark for mark in message.writers}
        self._sync_target = message.last
        self._persist.append((durable.RESET, durable.encode_reset(
            message.last, message.digest, message.versions, message.writers)))
        self._report_upstream()

    def _on_query(self, message: VersionQuery) -> None:
        if not ROLES[self.role].commits or not self.synced:
            return  # not the tail of this epoch: the asker's query times out
        versions = self._versions.get(message.key)
        seq = versions[-1][0] if versions else 0
        self._messages.append(VersionReply(self.epoch, self.node_id, message.sender,
                                           message.query, message.key, seq))

    def _on_version(self, message: VersionReply) -> None:
        query = self._queries.pop(message.query, None)
        if query is None:
            return
        if message.seq == 0:
            self._answer_read(query.request, None, "dirty")
            return
        for version in self._versions.get(query.key, ()):
            if version[0] == message.seq:
                self._answer_read(query.request, version, "dirty")
                return
        self._answer_read_failure(query.request, f"version {message.seq} is not held here")

    # ------------------------------------------------------------------ history

    def _append(self, update: Update) -> None:
        self._persist.append(update_record(update))
        self._take(update)

    def _take(self, update: Update) -> None:
        assert update.seq == self.last + 1, \
            f"n{self.node_id} takes update {update.seq} after {self.last}"
        self._digests[update.seq] = digest_after(self._digests[self.last], update)
        self.last = update.seq
        self._log[update.seq] = update
        self._versions.setdefault(update.key, []).append((update.seq, update.value))
        if update.client:
            mark = self._writers.get(update.client)
            if mark is None or update.request > mark.request:
                self._writers[update.client] = WriterMark(update.client, update.request,
                                                          update.seq)

    def _commit_upto(self, seq: int) -> None:
        if seq <= self.committed:
            return
        assert seq <= self.last, f"n{self.node_id} commits {seq} beyond its last {self.last}"
        self.committed = seq
        if self._downstream() is None:
            self.acked = self.last
        for pending_seq in sorted(s for s in self._pending_writes if s <= seq):
            self._replies.extend(Reply(request, Outcome.OK, seq=pending_seq)
                                 for request in self._pending_writes.pop(pending_seq))
        self._prune()
        if ROLES[self.role].receives:
            self._report_upstream()

    def _prune_floor(self) -> int:
        if self._downstream() is None:
            self._downstream_received = self.last
        return min(self.committed, self._downstream_received)

    def _prune(self) -> None:
        floor = self._prune_floor()
        for seq in [seq for seq in self._log if seq <= floor]:
            update = self._log.pop(seq)
            versions = self._versions[update.key]
            # Keep the newest clean version and every dirty one.
            while len(versions) > 1 and versions[1][0] <= floor:
                versions.pop(0)
        for seq in [seq for seq in self._digests if seq < floor]:
            del self._digests[seq]
        if len(self._writers) > WRITER_MEMORY:
            # Forget down to three quarters, so the sort is paid once per many new clients.
            newest = sorted(self._writers.values(), key=lambda mark: mark.seq)
            self._writers = {mark.client: mark for mark in newest[-WRITER_MEMORY * 3 // 4:]}

    # ------------------------------------------------------------------ sending

    def _pump(self, reply_to_unsynced: bool = False) -> None:
        link = self._link
        if link is None:
            return
        sent_any = False
        while link.next_send <= self.last and link.next_send <= link.received + WINDOW:
            upto = min(self.last, link.next_send + self._config.max_batch - 1)
            updates = tuple(self._log[seq] for seq in range(link.next_send, upto + 1))
            self._messages.append(Forward(self.epoch, self.node_id, link.peer, updates,
                                          self.last))
            link.next_send = upto + 1
            sent_any = True
        if reply_to_unsynced and not sent_any:
            self._messages.append(Forward(self.epoch, self.node_id, link.peer, (), self.last))

    def _send_transfer(self, joiner: NodeId) -> None:
        versions = tuple(Update(versions[-1][0], key, versions[-1][1])
                         for key, versions in sorted(self._versions.items()))
        writers = tuple(self._writers[client] for client in sorted(self._writers))
        self._messages.append(StateTransfer(self.epoch, self.node_id, joiner, versions,
                                            self.last, self._digests[self.last], writers))

    def _report_upstream(self) -> None:
        upstream = self._upstream()
        if upstream is None:
            return
        self._upstream_quiet = 0
        joining = self.role is Role.JOINING
        self._messages.append(Ack(
            self.epoch, self.node_id, upstream, self.last, self.committed, self.synced,
            need_state=joining and not self._transferred))

    def _ask_master(self, call: MasterCall) -> None:
        self._master.append(MasterRequest(call, self.epoch, self.ticks))

    # ------------------------------------------------------------------ answers

    def _answer_read(self, request: int, version: tuple[int, bytes] | None, how: str) -> None:
        seq, value = version if version is not None else (0, None)
        self._replies.append(Reply(request, Outcome.OK, value, seq, how))

    def _answer_read_failure(self, request: int, why: str) -> None:
        self._replies.append(Reply(request, Outcome.NOT_SERVING, why=why))

