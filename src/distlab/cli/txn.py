"""`distlab txn exec|status`: one transaction (2PC or 3PC), and what is unfinished per node.

`exec` runs the transaction over the participants that hold its keys: the consensus
groups (`--participants groups`, the default: the leader of the first key's group
coordinates, and a crash of any one node blocks nothing) or the nodes (`--participants
nodes`: each node one unreplicated shard, and the node it is sent to, `--node ID` or the
first that accepts a connection, coordinates). It prints `committed` and the reads, or
`aborted: REASON`, or `unknown: ...`; exit status 0 committed, 1 aborted, 2 bad usage or no
node accepting a connection, 3 unknown (it may still commit). `status` lists, per node,
every transaction not finished there (a group's, where the node leads that group): a
participant in doubt shows with its locks.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNKNOWN, UsageError, print_table
from distlab.cli.targets import add_cluster_arguments, resolve_members
from distlab.client import TxnClient, TxnResult, Unreachable
from distlab.core.ids import NodeId
from distlab.protocols.txn import Op, OpKind, parse_op
from distlab.runtime import loop

EXIT_BY_OUTCOME = {"committed": EXIT_OK, "aborted": EXIT_CHECK_FAILED, "unknown": EXIT_UNKNOWN}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "txn", help="two- and three-phase commit transactions across shards",
        description="Transactions over participants that each hold a shard of the keys.")
    commands = parser.add_subparsers(dest="txn_command", metavar="COMMAND", required=True)
    execute = commands.add_parser(
        "exec", help="run one transaction",
        description="Run one transaction of OPs: get:K, put:K=V, add:K=N (integer add; a "
                    "missing key is 0), require:K>=N (abort unless it holds). Exit status 0 "
                    "committed, 1 aborted, 2 bad usage, 3 unknown.")
    execute.add_argument("ops", nargs="+", metavar="OP")
    execute.add_argument("--protocol", choices=("2pc", "3pc"), default="2pc",
                         help="the commit protocol (default 2pc)")
    execute.add_argument("--participants", choices=("nodes", "groups"), default="groups",
                         help="each consensus group one participant (groups, the default) "
                              "or each node one (nodes)")
    execute.add_argument("--node", type=int, metavar="ID",
                         help="the node it is sent to first (nodes: its coordinator; "
                              "default: the first reachable)")
    execute.add_argument("--read-only", action="store_true",
                         help="gets only, over groups: read without locks at TrueTime's "
                              "latest (Spanner's read-only transaction)")
    execute.add_argument("--at", type=int, metavar="TS", dest="at_ts",
                         help="gets only, over groups: a snapshot read at timestamp TS (ns, "
                              "as a committed transaction reports), served by the replicas "
                              "of --node (or the first node that answers)")
    execute.add_argument("--timeout", type=float, default=10.0, metavar="S",
                         help="time budget, wait-die retries included (10 s)")
    execute.add_argument("--json", action="store_true", help="print the result as JSON")
    add_cluster_arguments(execute)
    execute.set_defaults(handler=run_exec)
    status = commands.add_parser(
        "status", help="every unfinished transaction, per node",
        description="Every transaction not finished on each node: id, role, state "
                    "(locking, prepared, precommitted, committing, ...), coordinator, age, "
                    "locks held. Exit status 1 if a node does not answer.")
    status.add_argument("--json", action="store_true", help="print JSON")
    add_cluster_arguments(status)
    status.set_defaults(handler=run_status)


def _ops(texts: list[str]) -> list[Op]:
    try:
        return [parse_op(text) for text in texts]
    except ValueError as error:
        raise UsageError(str(error)) from None


def run_exec(args: argparse.Namespace) -> int:
    ops = _ops(args.ops)
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    if args.read_only or args.at_ts is not None:
        if args.read_only and args.at_ts is not None:
            raise UsageError("--read-only reads at TrueTime's latest, --at at a timestamp: "
                             "choose one")
        if args.participants != "groups" or args.protocol != "2pc":
            raise UsageError("--read-only and --at read over groups with 2pc")
        if any(op.kind is not OpKind.GET for op in ops):
            raise UsageError("--read-only and --at take gets only (get:K)")
        if args.at_ts is not None and args.at_ts < 0:
            raise UsageError(f"--at is a timestamp in ns since the epoch, got {args.at_ts}")
    members = resolve_members(args.cluster, args.cluster_file)
    if args.node is not None and NodeId(args.node) not in members:
        raise UsageError(f"--node {args.node} is not in the cluster "
                         f"({', '.join(str(node) for node in sorted(members))})")

    async def main() -> TxnResult:
        client = TxnClient({node: str(address) for node, address in members.items()})
        try:
            return await client.execute(
                ops, args.protocol, participants=args.participants,
                node=NodeId(args.node) if args.node is not None else None,
                read_only=args.read_only, at_ts=args.at_ts,
                timeout=args.timeout)
        finally:
            await client.close()

    try:
        result = loop.run(main())
    except (ValueError, Unreachable) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        if result.outcome == "committed":
            print("committed" if result.ts is None else f"committed at ts {result.ts}")
            for key, value in sorted(result.reads.items()):
                print(f"{key} = {value}" if value is not None else f"{key} (missing)")
        else:
            print(f"{result.outcome}: {result.reason}")
    return EXIT_BY_OUTCOME[result.outcome]


def run_status(args: argparse.Namespace) -> int:
    members = resolve_members(args.cluster, args.cluster_file)

    async def main() -> list[Any]:
        client = TxnClient({node: str(address) for node, address in members.items()})
        try:
            return await client.status()
        finally:
            await client.close()

    nodes = loop.run(main())
    if args.json:
        print(json.dumps({"nodes": [
            {"id": entry.node, "address": entry.address, "ok": entry.error is None,
             "error": entry.error, "transactions": list(entry.transactions)}
            for entry in nodes]}, indent=2))
    else:
        rows = []
        for entry in nodes:
            if entry.error is not None:
                rows.append([entry.node, "-", "-", f"down: {entry.error}", "-", "-", "-"])
            for txn in entry.transactions:
                over_group = txn.get("group") is not None
                rows.append([entry.node, txn["id"],
                             f"{txn['role']} (group {txn['group']})" if over_group
                             else txn["role"], txn["state"],
                             f"group {txn['coordinator']}" if over_group
                             else txn["coordinator"], f"{txn['age_seconds']:.1f}s",
                             " ".join(txn["locks"]) or "-"])
        if rows:
            print_table(["node", "txn", "role", "state", "coordinator", "age", "locks"], rows)
        else:
            print("no unfinished transactions")
    return EXIT_OK if all(entry.error is None for entry in nodes) else EXIT_CHECK_FAILED
