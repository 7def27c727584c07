"""Simulated bank clients: transfers between accounts on different shards, and read-only
transactions over every account, each begun at some live node acting as its coordinator
(over nodes), or at the member leading the coordinating group (over groups).

Every transfer moves money (it requires the source to hold enough), so the total never
changes: a committed read of every account must see it, and after healing the stores must
hold it. A transaction that loses wait-die is retried with the same age, as the client
library does. Operations are recorded in DESIGN §9's transaction history format.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from random import Random

from distlab.core.ids import NodeId
from distlab.core.replicated_log import OutcomeUnknown
from distlab.protocols.txn import InDoubt, Op, OpKind, Outcome, Protocol
from distlab.sim.txn.world import TxnWorld
from distlab.sim.world import World

ATTEMPTS = 6
BACKOFF_SECONDS = 0.01
CONVERGE_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class BankSettings:
    clients: int = 4
    accounts: int = 5
    balance: int = 100
    think_ms: tuple[float, float] = (5.0, 40.0)
    # A transaction whose outcome has not come by then is unknown to its client.
    outcome_seconds: float = 1.5
    # Share of read-only transactions over every account.
    reads: float = 0.3


def account_names(settings: BankSettings) -> list[str]:
    return [f"acct{index}" for index in range(settings.accounts)]


class NoCoordinator(Exception):
    """Nobody took the transaction: it never began."""


class BankClients(abc.ABC):
    """The clients and the checks of the bank; where a transaction begins and where the
    accounts are read are the participants' own (`BankWorkload`, over nodes)."""

    def __init__(self, world: World, rng: Random, settings: BankSettings, protocol: Protocol,
                 owner: Callable[[str], object], accounts: Sequence[str] | None = None) -> None:
        self.world = world
        self.owner = owner
        self.rng = rng
        self.settings = settings
        self.protocol = protocol
        self.accounts = list(accounts) if accounts is not None else account_names(settings)
        self.total = settings.balance * settings.accounts
        self.lines: list[str] = []
        self.completed = {"ok": 0, "fail": 0, "info": 0}
        self._processes = itertools.count(1)
        self._txns = itertools.count(1)
        self.blocked_at_heal = 0

    @staticmethod
    def initial_data(settings: BankSettings, accounts: Sequence[str] | None = None
                     ) -> dict[str, str]:
        names = account_names(settings) if accounts is None else accounts
        return {name: str(settings.balance) for name in names}

    # ------------------------------------------------------------------ the clients

    async def run_clients(self, until: float) -> None:
        await asyncio.gather(*(self._client(until) for _ in range(self.settings.clients)))
        self.blocked_at_heal = sum(1 for entry in self._in_doubt() if entry.role == "participant")

    async def _client(self, until: float) -> None:
        world, rng = self.world, self.rng
        process = next(self._processes)
        while world.now < until:
            await asyncio.sleep(rng.uniform(*self.settings.think_ms) / 1000.0)
            if world.now >= until:
                return
            ops = self._read_all() if rng.random() < self.settings.reads else self._transfer()
            outcome = await self._run(process, ops)
            if outcome == "info":
                process = next(self._processes)  # a process never invokes after info

    def _read_all(self) -> tuple[Op, ...]:
        return tuple(Op(OpKind.GET, account) for account in self.accounts)

    def _transfer(self) -> tuple[Op, ...]:
        owner = self.owner
        source = self.rng.choice(self.accounts)
        elsewhere = [a for a in self.accounts if a != source and owner(a) != owner(source)]
        target = self.rng.choice(elsewhere or [a for a in self.accounts if a != source])
        amount = str(self.rng.randint(1, 30))
        return (Op(OpKind.REQUIRE, source, amount), Op(OpKind.ADD, source, f"-{amount}"),
                Op(OpKind.ADD, target, amount))

    async def _run(self, process: int, ops: tuple[Op, ...]) -> str:
        base = self.new_txn()
        priority = (int(self.world.now * 1e9), base)
        value: list[list[object]] = [[_history_op(op), op.key, op.argument or None]
                                     for op in ops]
        self._record(process, "invoke", value)
        kind, outcome, error = await self._attempts(
            base, lambda txn: self._begin(txn, priority, ops))
        if outcome is not None:
            self._check_reads(ops, outcome)
            self._record(process, "ok", _with_reads(value, outcome))
        else:
            self._record(process, kind, value, error)
        return kind

    def new_txn(self) -> str:
        return f"t{next(self._txns)}"

    async def _attempts(self, base: str, begin: Callable[[str], Awaitable[Outcome] | None]
                        ) -> tuple[str, Outcome | None, str | None]:
        """Begin the transaction `base` (attempt by attempt, `begin` given each attempt's
        name) until it commits, fails for good, or its outcome is unknown: ("ok", the
        outcome, None), ("fail", None, why) or ("info", None, None)."""
        gave_up = "gave up after wait-die aborts"
        for attempt in range(ATTEMPTS):
            begun = begin(f"{base}.{attempt}")
            if begun is None:
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            try:
                outcome = await asyncio.wait_for(begun, self.settings.outcome_seconds)
            except NoCoordinator:
                gave_up = "gave up: no member would coordinate it"
                await asyncio.sleep(BACKOFF_SECONDS * (attempt + 1))
                continue
            except (TimeoutError, OutcomeUnknown):
                return "info", None, None
            if outcome.committed:
                return "ok", outcome, None
            if not outcome.reason.startswith("wait-die") and "locks" not in outcome.reason:
                return "fail", None, outcome.reason
            gave_up = "gave up after wait-die aborts"
            await asyncio.sleep(BACKOFF_SECONDS * (attempt + 1))
        return "fail", None, gave_up

    def _check_reads(self, ops: tuple[Op, ...], outcome: Outcome) -> None:
        if not all(op.kind is OpKind.GET for op in ops):
            return
        reads = dict(outcome.reads)
        seen = sum(int(reads.get(account) or 0) for account in self.accounts)
        if seen != self.total:
            self.world.fail(f"bank: read-only transaction {outcome.txn} saw a total of {seen}, "
                            f"not {self.total}: {reads}")

    def _record(self, process: int, kind: str, value: object, error: str | None = None) -> None:
        if kind in self.completed:
            self.completed[kind] += 1
        line: dict[str, object] = {"process": process, "type": kind, "f": "txn",
                                   "value": value, "time": int(self.world.now * 1e9)}
        if error is not None:
            line["error"] = error
        self.lines.append(json.dumps(line))

    # ------------------------------------------------------------------ the participants'

    @abc.abstractmethod
    def _begin(self, txn: str, priority: tuple[int, str], ops: tuple[Op, ...]
               ) -> Awaitable[Outcome] | None:
        """`txn` begun at a coordinator, its outcome to come (raising NoCoordinator if none
        takes it); None when there is nobody to ask now."""

    @abc.abstractmethod
    def _in_doubt(self) -> list[InDoubt]:
        """The unfinished transactions of every participant and coordinator running now."""

    @abc.abstractmethod
    def _unfinished(self) -> str | None:
        """What keeps the run from having settled (None once it has)."""

    @abc.abstractmethod
    def _held(self) -> str | None:
        """A problem with what the accounts hold once settled, or None."""

    # ------------------------------------------------------------------ after healing

    async def converge(self, timeout: float) -> str | None:
        world = self.world
        deadline = world.now + timeout
        while True:
            unfinished = self._unfinished()
            if unfinished is None:
                break
            if world.now >= deadline:
                return f"after healing, {unfinished}"
            await asyncio.sleep(CONVERGE_POLL_SECONDS)
        problem = self._held()
        if problem is not None:
            return problem
        return await self._final_read(deadline)

    async def _final_read(self, deadline: float) -> str | None:
        process = next(self._processes)
        while self.world.now < deadline:
            if await self._run(process, self._read_all()) == "ok":
                return None
            process = next(self._processes)
        return "after healing, no read of every account committed"


class BankWorkload(BankClients):
    """The bank over nodes, each one participant: any live node coordinates."""

    def __init__(self, world: TxnWorld, rng: Random, settings: BankSettings,
                 protocol: Protocol) -> None:
        super().__init__(world, rng, settings, protocol, world.owner)
        self.nodes = world

    def _begin(self, txn: str, priority: tuple[int, str], ops: tuple[Op, ...]
               ) -> Awaitable[Outcome] | None:
        live = self.nodes.live_nodes()
        if not live:
            return None
        driver = self.nodes.txn_driver(self.rng.choice(sorted(live)))
        if driver is None:
            return None
        return driver.execute(txn, priority, ops, self.protocol)

    def _in_doubt(self) -> list[InDoubt]:
        return [entry for node in self.nodes.live_nodes() for entry in self._at(node)]

    def _at(self, node: NodeId) -> list[InDoubt]:
        driver = self.nodes.txn_driver(node)
        return driver.core.in_doubt() if driver is not None else []

    def _unfinished(self) -> str | None:
        world = self.nodes
        unfinished = {node: self._at(node) for node in sorted(world.nodes)}
        down = [node for node, sim in world.nodes.items() if not sim.up]
        if not down and not any(unfinished.values()):
            return None
        listed = "; ".join(f"n{node}: " + ", ".join(f"{e.txn} {e.state}" for e in entries)
                           for node, entries in unfinished.items() if entries)
        return (f"transactions are still unfinished ({listed or 'none'})"
                + (f"; nodes down: {down}" if down else ""))

    def _held(self) -> str | None:
        held = 0
        for account in self.accounts:
            driver = self.nodes.txn_driver(self.nodes.owner(account))
            assert driver is not None
            held += int(driver.core.participant.store.get(account) or 0)
        if held != self.total:
            return f"bank: the accounts hold {held} after healing, not {self.total}"
        return None


def _history_op(op: Op) -> str:
    return {OpKind.GET: "r", OpKind.PUT: "w", OpKind.ADD: "add",
            OpKind.REQUIRE: "require"}[op.kind]


def _with_reads(value: list[list[object]], outcome: Outcome) -> list[list[object]]:
    reads = dict(outcome.reads)
    return [[op, key, reads.get(str(key))] if op == "r" else [op, key, arg]
            for op, key, arg in value]
