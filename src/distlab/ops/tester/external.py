"""The external-consistency workload: the bank over consensus groups with Spanner's
timestamps (DESIGN §17), checked for external consistency as well as for the bank's
conservation of money.

Its accounts are spread over the groups, at least two in each. Workers invoke, at the
shared rate, transfers between accounts (read-write 2PC transactions over groups, recorded
with their commit timestamp), read-only transactions of every account (at TrueTime's latest
on the leader of the first account's group, which is drawn), and snapshot reads of every
account at a recent timestamp (`at`: one a recent transaction reported, or a moment up to
SNAPSHOT_LAG_SECONDS ago) from a random node's replicas.

Commit wait is what the checker's real-time rule needs, and random traffic rarely tests it:
it takes a transaction T2 that starts within a few milliseconds of T1's completion on
another group, coordinated by a node whose clock is behind T1's coordinator's. So one more
client runs such pairs back to back: T1 a transfer within the group led by the node with the
fastest clock, and T2, invoked as soon as T1 commits, a read-only transaction of every
account coordinated by the group led by the slowest clock (or, a share of the time, a
transfer within that group). Which node leads which group is learned from the coordinators
that answer; which clock is fast from the skews the run set (`clock_skews`). Without skews
(a cluster the test did not start), pairs take groups at random.

With commit wait, T1 reports its commit only once its timestamp s1 has passed on every
clock, so T2's timestamp is above s1. Without it (DISTLAB_UNSAFE_NO_COMMIT_WAIT), T2 read at
TT.now().latest on a clock behind T1's coordinator's by the skews' spread falls below s1
when less than that spread passes between the moment s1 is chosen and T2's start: T1's
COMMIT record still has to be applied in its group, its reply to reach the client and T2 to
reach its coordinator, which on a busy 2-core machine takes some 6-12 ms. With skews
-3/0/+3 ms a few pairs in a hundred fall below; with -8/0/+8 (and TRUETIME_EPSILON_MS=8)
most do. Each pair therefore runs alone: the workers begin nothing new, and it waits (up to
PAIR_DRAIN_SECONDS) for theirs in flight to finish; then the workers have the time the
pair took (PAIR_TIME_SHARE of the time goes to pairs).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Mapping
from random import Random
from typing import Any

from distlab.check import HistoryRecorder
from distlab.client import TxnResult
from distlab.core.ids import NodeId
from distlab.ops.tester.bank import MAX_TRANSFER, BankError, BankWorkload
from distlab.wire.addresses import Address
from distlab.wire.sharding import group_of, keys_by_group

ACCOUNTS_PER_GROUP = 2
READ_SHARE = 0.25
SNAPSHOT_SHARE = 0.25
# The share of the time the pairs run alone, and the share of pairs whose T2 is read-only
# (the rest are transfers: a read-write T2 chooses its timestamp only after its prepare is
# applied in its group, which leaves less of the skew to expose).
PAIR_TIME_SHARE = 0.5
PAIR_READ_SHARE = 0.75
# How long a pair waits for the workers' transactions in flight to finish before it starts.
PAIR_DRAIN_SECONDS = 0.25
# Snapshot reads: at one of the last timestamps transactions reported, or this far back.
RECENT_TIMESTAMPS = 64
SNAPSHOT_LAG_SECONDS = 0.5


def spread_accounts(total: int, groups: int) -> list[str]:
    """`total` account names spread over `groups` as evenly as they go, round robin."""
    per_group = -(-total // groups)
    by_group = keys_by_group("acct", per_group, groups)
    ordered = [by_group[group][index] for index in range(per_group) for group in range(groups)]
    return ordered[:total]


class ExternalWorkload(BankWorkload):
    def __init__(self, recorder: HistoryRecorder, addresses: Mapping[NodeId, Address],
                 accounts: int | None, rate: float, concurrency: int,
                 operation_timeout: float, rng: Random,
                 clock_skews: Mapping[NodeId, float] | None = None) -> None:
        super().__init__(recorder, addresses, [], "2pc", rate, concurrency, operation_timeout,
                         rng, participants="groups")
        self.read_only_reads = True
        self._account_count = accounts
        self._skews = dict(clock_skews or {})
        self._groups = 0
        self._by_group: list[list[str]] = []
        # Group -> the node that last answered as its coordinator (so its leader).
        self._leaders: dict[int, NodeId] = {}
        self._recent: collections.deque[int] = collections.deque(maxlen=RECENT_TIMESTAMPS)
        self._opened_at = 0
        # Set while the workers may invoke; a pair clears it while it runs.
        self._workers_may_go = asyncio.Event()
        self._workers_may_go.set()
        self._in_flight = 0
        self._idle = asyncio.Event()  # set while no worker has a transaction in flight
        self._idle.set()
        # Pairs whose T2 was invoked right after T1 committed, by T2's kind, and those whose
        # T1 was coordinated by a faster clock than T2's.
        self.pairs: dict[str, int] = {"read": 0, "transfer": 0, "faster_to_slower": 0}

    async def open_accounts(self) -> None:
        groups = await self.group_count()
        if groups < 2:
            raise BankError("the external-consistency workload needs at least 2 groups (its "
                            f"pairs run on two), and the cluster has {groups}")
        total = self._account_count or ACCOUNTS_PER_GROUP * groups
        if total < ACCOUNTS_PER_GROUP * groups:
            raise BankError(f"{total} accounts for {groups} groups: the workload needs "
                            f"{ACCOUNTS_PER_GROUP} in each (transfers within one group)")
        self._groups = groups
        self._accounts = spread_accounts(total, groups)
        self._owner = {name: group_of(name, groups) for name in self._accounts}
        self._by_group = [[name for name in self._accounts if self._owner[name] == group]
                          for group in range(groups)]
        await self._open()
        if not self._recent:
            raise BankError("the opening transaction committed without a timestamp: the "
                            "cluster runs without TrueTime (TXN_TIMESTAMPS=off?)")
        self._opened_at = self._recent[-1]

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self._concurrency)),
                             self._pair_client())

    async def _worker(self) -> None:
        process = self.new_process()
        while True:
            await self._pacer.wait_turn()
            await self._workers_may_go.wait()
            if self._stopping.is_set():
                return
            node = self._rng.choice(self._nodes)
            draw = self._rng.random()
            self._in_flight += 1
            self._idle.clear()
            try:
                if draw < READ_SHARE:
                    outcome = await self._read_all(process, node, self._timeout,
                                                   first=self._rng.choice(self._accounts))
                elif draw < READ_SHARE + SNAPSHOT_SHARE:
                    outcome = await self._read_all(process, node, self._timeout,
                                                   at_ts=self._recent_timestamp())
                else:
                    outcome = await self._transfer(process, node)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()
            if outcome == "info":
                process = self.new_process()

    def _recent_timestamp(self) -> int:
        """Never below the opening's timestamp: a read of the time before it would find no
        accounts, right for the store and wrong for the bank."""
        if self._rng.random() < 0.5:
            return self._rng.choice(self._recent)
        return max(self._opened_at,
                   time.time_ns() - int(self._rng.uniform(0, SNAPSHOT_LAG_SECONDS) * 1e9))

    # ---- pairs ----

    async def _pair_client(self) -> None:
        process = self.new_process()
        while not self._stopping.is_set():
            # A pair runs alone, the workers' transactions finished and no new one begun:
            # what T1's reply and T2's start wait behind on a busy machine is what hides a
            # missing commit wait (the skews' spread is a few milliseconds). Then the
            # workers have their share of the time.
            started = time.monotonic()
            self._workers_may_go.clear()
            try:
                await self._drain()
                outcome = await self._run_pair(process)
            finally:
                self._workers_may_go.set()
            if outcome == "info":
                process = self.new_process()
            alone = time.monotonic() - started
            await asyncio.sleep(alone * (1 - PAIR_TIME_SHARE) / PAIR_TIME_SHARE)

    async def _drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), PAIR_DRAIN_SECONDS)

    async def _run_pair(self, process: int) -> str:
        fast, slow = self._exposing_groups()
        outcome = await self._transfer_within(process, fast)
        if outcome != "ok":
            return outcome
        across = self._clock_of(fast) > self._clock_of(slow)
        if self._rng.random() < PAIR_READ_SHARE:
            self.pairs["read"] += 1
            outcome = await self._read_all(process, self._leaders.get(slow), self._timeout,
                                           first=self._rng.choice(self._by_group[slow]))
        else:
            self.pairs["transfer"] += 1
            outcome = await self._transfer_within(process, slow)
        self.pairs["faster_to_slower"] += across
        return outcome

    def _clock_of(self, group: int) -> float:
        """The skew of the clock of the node leading `group`, as far as known (else 0)."""
        leader = self._leaders.get(group)
        return self._skews.get(leader, 0.0) if leader is not None else 0.0

    def _exposing_groups(self) -> tuple[int, int]:
        """Two groups, the first led by a faster clock than the second by as much as the
        leaders allow; any two when no leader's clock is known to be ahead of another's."""
        choices = [(self._clock_of(first) - self._clock_of(second), first, second)
                   for first in self._leaders for second in self._leaders
                   if self._leaders[first] != self._leaders[second]]
        best = max((spread for spread, _, _ in choices), default=0.0)
        if best > 0:
            return self._rng.choice([(first, second) for spread, first, second in choices
                                     if spread == best])
        first, second = self._rng.sample(range(self._groups), 2)
        return first, second

    async def _transfer_within(self, process: int, group: int) -> str:
        """A transfer between two accounts of `group`: a single-shard transaction, which
        `group`'s leader coordinates."""
        source, target = self._rng.sample(self._by_group[group], 2)
        amount = self._rng.randint(1, MAX_TRANSFER)
        texts = [f"require:{source}>={amount}", f"add:{source}={-amount}",
                 f"add:{target}={amount}"]
        ops = [["add", source, -amount], ["add", target, amount]]
        return await self._perform(process, "transfer", texts, ops, self._leaders.get(group),
                                   self._timeout)

    # ---- what the answers tell ----

    def _record(self, process: int, kind: str, ops: list[list[Any]],
                result: TxnResult) -> str:
        if result.ts is not None and result.outcome == "committed":
            self._recent.append(result.ts)
        if (kind != "snapshot read" and result.coordinator is not None and ops
                and result.outcome in ("committed", "aborted")):
            # Over groups the node that answered coordinated: it leads the first key's group.
            first = str(ops[0][1])
            if first in self._owner:
                self._leaders[self._owner[first]] = result.coordinator
        return super()._record(process, kind, ops, result)
