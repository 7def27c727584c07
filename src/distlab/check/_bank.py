"""The bank checker: transfers between accounts must move money, never make or lose it.

A bank history (DESIGN §9 transactions) opens with one committed transaction that writes
every account's opening balance (`w`); after it, transfers are `add` pairs (`[add A -n],
[add B n]`, taken only while A holds n) and reads are read-only transactions of every
account (a missing account reads as null, counted 0). The checks:

- Conservation: every committed read of all accounts, and the final read after the heal,
  sums to the opening total, and shows no negative balance.
- Each transfer applied whole and once: the final balances minus the opening ones, minus
  every committed transfer's change, must be the change of some set of the transfers whose
  outcome is unknown, each taken at most once. The sets reachable are enumerated exactly
  (as distinct balance vectors, which stay few since amounts are small); should they grow
  past a budget the check says so and reports nothing, rather than guess. A transfer
  applied in part, or twice, or an aborted one applied, leaves a difference no such set
  gives; the report names the transfer whose extra application (whole, or one half)
  would explain it, when one does.
- Blocked transactions: those a node still lists as unfinished after the final heal, in
  doubt for longer than the time since that heal (so the heal did not resolve them),
  reported with the nodes that hold them. They are a finding, not a safety violation. A
  node counts a transaction's age in its own ticks from when it learned of it (or recovered
  it on restart), which never exceeds the real age: the comparison may miss a blocked
  transaction, never list one that is not.
- Blocked while a node was down: at the heal of a crash the nemesis armed, before the
  crashed node restarts, the survivors' unfinished transactions. Those the crashed node
  coordinated, when it had been down for at least MIN_OUTAGE_SECONDS, could not be decided
  without it (a 3PC participant that hears nothing decides with the others well within that
  time; a 2PC participant that voted yes must wait for its coordinator).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distlab.check._txn_history import Transaction, TxnHistory

# The most distinct balance vectors the unknown transfers may reach before the
# explanation is given up as unchecked.
EXPLANATION_BUDGET = 200_000

Delta = tuple[int, ...]

# How long a crashed coordinator must have been down before the transactions it left
# unfinished count as blocked: several times what 3PC's termination protocol takes with
# the nodes' default timeouts (about 1.2 s: in doubt 0.5 s, then collect and pre-decide).
MIN_OUTAGE_SECONDS = 3.0


class BankVerdict(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"  # no violation found, but the final balances went unchecked


@dataclass(frozen=True, slots=True)
class BlockedTxn:
    txn_id: str
    coordinator: str
    state: str
    age_seconds: float
    participants: tuple[int, ...]  # the nodes that list it unfinished
    locks: tuple[str, ...]
    when: str = "after the final heal"
    observed_ns: int | None = None  # when it was listed, if not at the final status

    def describe(self) -> str:
        return (f"transaction {self.txn_id} {self.state} for {self.age_seconds:.1f} s on "
                f"node{'s' if len(self.participants) != 1 else ''} "
                f"{', '.join(str(n) for n in self.participants)} {self.when} (coordinator "
                f"{self.coordinator or '?'}; locks {' '.join(self.locks) or 'none'})")


@dataclass(frozen=True, slots=True)
class Outage:
    """A node that crashed and stayed down `down_seconds` (at least) before the nemesis
    restarted it, and the unfinished transactions the other nodes listed just before (each
    entry with its `node`)."""

    node: int
    down_seconds: float
    unfinished: tuple[Mapping[str, Any], ...]
    observed_ns: int = 0  # time.monotonic_ns() when the others were asked


@dataclass(slots=True)
class BankResult:
    accounts: tuple[str, ...]
    total: int | None
    violations: list[str] = field(default_factory=list)
    blocked: list[BlockedTxn] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    transfers: dict[str, int] = field(default_factory=dict)  # outcome -> count
    reads: dict[str, int] = field(default_factory=dict)
    final_checked: bool = False  # whether the final balances were explained (or not)

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def verdict(self) -> BankVerdict:
        if self.violations:
            return BankVerdict.INVALID
        return BankVerdict.VALID if self.final_checked else BankVerdict.UNKNOWN

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "verdict": self.verdict.value,
                "final_checked": self.final_checked, "accounts": list(self.accounts),
                "total": self.total,
                "violations": list(self.violations),
                "blocked": [b.describe() for b in self.blocked], "notes": list(self.notes),
                "transfers": dict(self.transfers), "reads": dict(self.reads)}


def _balance(value: object) -> int | None:
    """A read's value as a balance: null is 0, an integer (or its decimal text) itself."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _delta(txn: Transaction, index: Mapping[str, int]) -> Delta:
    change = [0] * len(index)
    for op, key, arg in txn.ops:
        if op == "add" and isinstance(arg, int) and key in index:
            change[index[str(key)]] += arg
    return tuple(change)


def _add(a: Delta, b: Delta) -> Delta:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _sub(a: Delta, b: Delta) -> Delta:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def check_bank(history: TxnHistory, accounts: Sequence[str],
               final: Mapping[str, object] | None,
               unfinished: Iterable[Mapping[str, Any]] = (),
               since_heal_seconds: float | None = None,
               outages: Iterable[Outage] = ()) -> BankResult:
    """Check a bank history. `final` is the read of every account after the heal (None when
    it could not be made); `unfinished` the entries of the Txn Status RPC after the heal,
    each with its `node`; `since_heal_seconds` how long before that the final heal was;
    `outages` the crashes the nemesis healed, with what the other nodes held unfinished."""
    names = tuple(accounts)
    index = {name: i for i, name in enumerate(names)}
    result = BankResult(names, None)
    txns = list(history.transactions)
    opening = txns[0] if txns else None
    if (opening is None or opening.status != "ok"
            or {str(key) for op, key, _ in opening.ops if op == "w"} != set(names)):
        result.notes.append("no committed opening transaction writes every account; "
                            "nothing to check")
        result.violations.append("the history does not open with the committed opening "
                                 "balances of every account")
        return result
    initial = [0] * len(names)
    for op, key, arg in opening.ops:
        if op == "w":
            balance = _balance(arg)
            if balance is None:
                result.violations.append(f"opening balance of {key} is not an integer: {arg!r}")
                return result
            initial[index[str(key)]] = balance
    total = sum(initial)
    result.total = total
    committed: list[Transaction] = []
    unknown: list[Transaction] = []
    for txn in txns[1:]:
        if txn.read_only:
            if txn.status != "ok":
                result.reads["unknown"] = result.reads.get("unknown", 0) + 1
                continue
            result.reads["ok"] = result.reads.get("ok", 0) + 1
            _check_read(result, {str(key): arg for _, key, arg in txn.ops}, total,
                        txn.describe())
        elif txn.status == "ok":
            committed.append(txn)
        else:
            unknown.append(txn)
    result.transfers = {"committed": len(committed), "unknown": len(unknown),
                        "aborted": history.failed}
    if final is None:
        result.notes.append("no final read after the heal: the final balances are unchecked")
    else:
        _check_read(result, final, total, "the final read after the heal")
        if all(name in final and _balance(final[name]) is not None for name in names):
            _explain_final(result, final, tuple(initial), committed, unknown, index)
    result.blocked = _blocked(unfinished, since_heal_seconds)
    for outage in outages:
        result.blocked.extend(_blocked_by_outage(outage))
    return result


def _check_read(result: BankResult, read: Mapping[str, object], total: int,
                what: str) -> None:
    missing = [name for name in result.accounts if name not in read]
    if missing:
        result.violations.append(f"{what} does not read every account (missing "
                                 f"{', '.join(missing)})")
        return
    balances = {name: _balance(read[name]) for name in result.accounts}
    bad = [name for name, value in balances.items() if value is None]
    if bad:
        result.violations.append(f"{what} reads a non-integer balance in {', '.join(bad)}")
        return
    seen = sum(v for v in balances.values() if v is not None)
    if seen != total:
        result.violations.append(f"total not conserved: {what} sums to {seen}, not {total}")
    negative = [f"{name}={value}" for name, value in balances.items()
                if value is not None and value < 0]
    if negative:
        result.violations.append(f"negative balance: {what} reads {', '.join(negative)}")


def _explain_final(result: BankResult, final: Mapping[str, object], initial: Delta,
                   committed: Sequence[Transaction], unknown: Sequence[Transaction],
                   index: Mapping[str, int]) -> None:
    observed = tuple(_balance(final[name]) or 0 for name in result.accounts)
    residual = _sub(observed, initial)
    for txn in committed:
        residual = _sub(residual, _delta(txn, index))
    zero: Delta = (0,) * len(index)
    reachable: set[Delta] = {zero}
    for txn in unknown:
        change = _delta(txn, index)
        if change == zero:
            continue
        reachable |= {_add(state, change) for state in reachable}
        if len(reachable) > EXPLANATION_BUDGET:
            result.notes.append(f"the {len(unknown)} transfers of unknown outcome allow more "
                                f"than {EXPLANATION_BUDGET} final states: whether each "
                                "transfer applied once is unchecked")
            return
    result.final_checked = True
    if residual in reachable:
        return
    off = ", ".join(f"{name} {residual[i]:+d}" for name, i in index.items() if residual[i])
    line = (f"final balances not explained by each committed transfer applied once and each "
            f"of the {len(unknown)} unknown at most once (after the committed ones, off by "
            f"{off})")
    hint = _hint(residual, reachable, [*committed, *unknown], index)
    result.violations.append(line + (f": {hint}" if hint else ""))


def _hint(residual: Delta, reachable: set[Delta], transfers: Sequence[Transaction],
          index: Mapping[str, int]) -> str | None:
    """The transfer whose one extra application, whole or one half, explains the
    difference: a likely story, not part of the verdict."""
    for txn in transfers:
        if _sub(residual, _delta(txn, index)) in reachable:
            return f"as if {txn.describe()} applied twice"
    for txn in transfers:
        for op, key, arg in txn.ops:
            if op != "add" or not isinstance(arg, int) or str(key) not in index:
                continue
            half = [0] * len(index)
            half[index[str(key)]] = arg
            whole = _delta(txn, index)
            if (_sub(residual, tuple(half)) in reachable
                    or _sub(_add(residual, whole), tuple(half)) in reachable):
                return f"as if {txn.describe()} applied in part ({op} {key} {arg})"
    return None


def _blocked(unfinished: Iterable[Mapping[str, Any]],
             since_heal_seconds: float | None) -> list[BlockedTxn]:
    if since_heal_seconds is None:
        return []
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for entry in unfinished:
        if float(entry.get("age_seconds", 0.0)) > since_heal_seconds:
            by_id.setdefault(str(entry.get("id")), []).append(entry)
    return _group(by_id)


def _blocked_by_outage(outage: Outage) -> list[BlockedTxn]:
    if outage.down_seconds < MIN_OUTAGE_SECONDS:
        return []
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for entry in outage.unfinished:
        if str(entry.get("coordinator")) == str(outage.node) and \
                int(entry.get("node", -1)) != outage.node:
            by_id.setdefault(str(entry.get("id")), []).append(entry)
    return _group(by_id, f"while its coordinator, node {outage.node}, was down "
                         f"{outage.down_seconds:.1f} s", outage.observed_ns)


def _group(by_id: Mapping[str, list[Mapping[str, Any]]], when: str = "after the final heal",
           observed_ns: int | None = None) -> list[BlockedTxn]:
    blocked = []
    for txn_id, entries in sorted(by_id.items()):
        blocked.append(BlockedTxn(
            txn_id=txn_id, coordinator=str(entries[0].get("coordinator") or ""),
            state="/".join(sorted({str(e.get("state")) for e in entries})),
            age_seconds=max(float(e.get("age_seconds", 0.0)) for e in entries),
            participants=tuple(sorted(int(e["node"]) for e in entries)),
            locks=tuple(sorted({str(lock) for e in entries for lock in e.get("locks", ())})),
            when=when, observed_ns=observed_ns))
    return blocked
