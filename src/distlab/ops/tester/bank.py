"""The bank workload: concurrent clients moving money between accounts in transactions, and
reading every account, over the Txn service (2PC or 3PC; each node one participant, or each
consensus group one).

The run opens every account with the same balance in one transaction; then each worker
invokes, at the shared rate, a transfer (`require:A>=n add:A=-n add:B=n`, A and B held by
different participants where the accounts allow) or a read of every account, coordinated
by a random node (over groups: sent to a random node first, coordinated by the leader of
its first account's group). The history is DESIGN §9's transaction format: a transfer is
recorded as its two `add`s, a read as one `r` per account; committed is `ok` (with the
transaction's timestamp, `ts`, where the cluster assigns one), aborted (wait-die, a failed
require, a vote no) or never sent is `fail`, an unknown outcome is `info`, after which the
worker continues as a new process.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from distlab.check import HistoryRecorder
from distlab.client import KVClient, KVError, TxnClient, TxnResult, Unreachable
from distlab.core.ids import NodeId
from distlab.ops.tester.workload import Pacer, Tally
from distlab.protocols.txn import parse_op
from distlab.wire.addresses import Address
from distlab.wire.sharding import group_of, participant_of

OPENING_BALANCE = 100
MAX_TRANSFER = 5
READ_SHARE = 0.25
FINAL_READ_ATTEMPTS = 5
FINAL_READ_BUDGET_SECONDS = 10.0
OPENING_ATTEMPTS = 10
# How long past its budget a transaction may run before the workload gives up on it.
CLIENT_GRACE_SECONDS = 5.0


def account_names(count: int) -> list[str]:
    return [f"acct{index}" for index in range(count)]


class BankError(RuntimeError):
    """The run cannot go on (the opening balances did not commit)."""


class BankWorkload:
    def __init__(self, recorder: HistoryRecorder, addresses: Mapping[NodeId, Address],
                 accounts: Sequence[str], protocol: str, rate: float, concurrency: int,
                 operation_timeout: float, rng: Random, participants: str = "nodes",
                 groups: int | None = None) -> None:
        assert concurrency > 0
        assert participants in ("nodes", "groups")
        self._recorder = recorder
        self._nodes = sorted(addresses)
        self._client = TxnClient({node: str(address) for node, address in addresses.items()})
        self._accounts = list(accounts)
        self._participants = participants
        self._addresses = addresses
        # Where each account is held, to make transfers cross participants; over groups of
        # a running cluster, learned from the cluster before the run (`open_accounts`).
        self._owner = ({name: group_of(name, groups) for name in accounts}
                       if participants == "groups" and groups is not None else
                       {name: participant_of(name, [int(n) for n in self._nodes])
                        for name in accounts})
        self._protocol = protocol
        self._pacer = Pacer(rate)
        self._concurrency = concurrency
        self._timeout = operation_timeout
        self._rng = rng
        self._process_ids = itertools.count()
        self._stopping = asyncio.Event()
        self.tally = Tally()
        self.unexpected: list[str] = []
        self.last_reads: dict[str, int | str | None] = {}  # of the last committed read
        # Reads of every account as read-only transactions (over groups, with timestamps)
        # rather than as read-write ones that lock what they read.
        self.read_only_reads = False

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    def new_process(self) -> int:
        return next(self._process_ids)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self._client.close()

    def overruns(self) -> list[str]:
        return []

    async def open_accounts(self) -> None:
        """Every account at OPENING_BALANCE, in one committed transaction, before the run."""
        if self._participants == "groups":
            groups = await self.group_count()
            self._owner = {name: group_of(name, groups) for name in self._accounts}
        await self._open()

    async def group_count(self) -> int:
        """How many groups the cluster has, as it says."""
        kv = KVClient({node: str(address) for node, address in self._addresses.items()})
        try:
            return await kv.group_count(budget=FINAL_READ_BUDGET_SECONDS)
        except KVError as error:
            raise BankError(f"how many groups the cluster has: {error}") from error
        finally:
            await kv.close()

    async def _open(self) -> None:
        if len(self._accounts) < 2:
            raise BankError(f"a bank needs at least 2 accounts, not {len(self._accounts)}")
        ops = [["w", name, OPENING_BALANCE] for name in self._accounts]
        texts = [f"put:{name}={OPENING_BALANCE}" for name in self._accounts]
        for _ in range(OPENING_ATTEMPTS):
            outcome = await self._perform(self.new_process(), "open", texts, ops, None,
                                          budget=FINAL_READ_BUDGET_SECONDS)
            if outcome == "ok":
                return
            if outcome == "info":
                raise BankError("the opening balances' transaction has an unknown outcome")
        raise BankError(f"the opening balances did not commit in {OPENING_ATTEMPTS} attempts")

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self._concurrency)))

    async def _worker(self) -> None:
        process = self.new_process()
        while True:
            await self._pacer.wait_turn()
            if self._stopping.is_set():
                return
            node = self._rng.choice(self._nodes)
            if self._rng.random() < READ_SHARE:
                outcome = await self._read_all(process, node, self._timeout)
            else:
                outcome = await self._transfer(process, node)
            if outcome == "info":
                process = self.new_process()

    def _pair(self) -> tuple[str, str]:
        source = self._rng.choice(self._accounts)
        elsewhere = [a for a in self._accounts if self._owner[a] != self._owner[source]]
        others = elsewhere or [a for a in self._accounts if a != source]
        return source, self._rng.choice(others)

    async def _transfer(self, process: int, node: NodeId) -> str:
        source, target = self._pair()
        amount = self._rng.randint(1, MAX_TRANSFER)
        texts = [f"require:{source}>={amount}", f"add:{source}={-amount}",
                 f"add:{target}={amount}"]
        ops = [["add", source, -amount], ["add", target, amount]]
        return await self._perform(process, "transfer", texts, ops, node, self._timeout)

    async def _read_all(self, process: int, node: NodeId | None, budget: float, *,
                        first: str | None = None, at_ts: int | None = None) -> str:
        """A read of every account, `first` (which coordinates it over groups) first; at
        `at_ts`, a snapshot read of `node`'s replicas."""
        names = self._accounts
        if first is not None:
            names = [first, *(name for name in names if name != first)]
        texts = [f"get:{name}" for name in names]
        ops: list[list[Any]] = [["r", name, None] for name in names]
        return await self._perform(process, "read" if at_ts is None else "snapshot read",
                                   texts, ops, node, budget,
                                   read_only=self.read_only_reads, at_ts=at_ts)

    async def _perform(self, process: int, kind: str, texts: list[str], ops: list[list[Any]],
                       node: NodeId | None, budget: float, *, read_only: bool = False,
                       at_ts: int | None = None) -> str:
        """Run one transaction as `process`, record its outcome, return ok, fail or info."""
        self._recorder.invoke(process, "txn", None, ops,
                              extra=None if at_ts is None else {"at": at_ts})
        try:
            async with asyncio.timeout(budget + CLIENT_GRACE_SECONDS):
                result = await self._client.execute(
                    [parse_op(t) for t in texts], self._protocol,
                    participants=self._participants, node=node, timeout=budget,
                    read_only=read_only, at_ts=at_ts)
        except Unreachable:
            self._recorder.fail(process)  # never sent
            return self._count("fail", kind)
        except TimeoutError:
            self.unexpected.append(f"{kind}: the client did not return within "
                                   f"{budget + CLIENT_GRACE_SECONDS:g} s")
            self._recorder.info(process)
            return self._count("info", kind)
        except Exception as error:
            # Not an answer from the cluster: whether it committed is unknown.
            self.unexpected.append(f"{kind}: {type(error).__name__}: {error}")
            self._recorder.info(process)
            return self._count("info", kind)
        return self._record(process, kind, ops, result)

    def _record(self, process: int, kind: str, ops: list[list[Any]], result: TxnResult) -> str:
        if result.outcome == "committed":
            completed = [[op, key, _balance(result.reads.get(key))] if op == "r"
                         else [op, key, arg] for op, key, arg in ops]
            self._recorder.ok(process, completed,
                              extra=None if result.ts is None else {"ts": result.ts})
            self.last_reads = {key: _balance(result.reads.get(key))
                               for op, key, _ in ops if op == "r"}
            return self._count("ok", kind)
        if result.outcome == "aborted":
            self._recorder.fail(process)
            return self._count("fail", kind)
        self._recorder.info(process)
        return self._count("info", kind)

    def _count(self, outcome: str, kind: str) -> str:
        setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
        self.tally.by_f[kind] = self.tally.by_f.get(kind, 0) + 1
        return outcome

    async def final_reads(self) -> dict[str, int | str | None]:
        """One committed read of every account (the last transaction of the history); a read
        that aborts (a lock still held) or ends unknown is tried again a few times."""
        for _ in range(FINAL_READ_ATTEMPTS):
            process = self.new_process()
            if await self._read_all(process, None, FINAL_READ_BUDGET_SECONDS) == "ok":
                return dict(self.last_reads)
            await asyncio.sleep(0.5)  # a lock an in-doubt participant holds may clear
        return {}

    async def unfinished(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every node's unfinished transactions (each entry with its `node`), and the nodes
        that did not answer."""
        entries: list[dict[str, Any]] = []
        errors = []
        for node in await self._client.status():
            if node.error is not None:
                errors.append(f"node {node.node}: {node.error}")
            entries.extend({"node": int(node.node), **txn} for txn in node.transactions)
        return entries, errors


def _balance(text: str | None) -> int | str | None:
    """A balance read as an integer; text that is not one stays text, for the checker to
    report."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text
