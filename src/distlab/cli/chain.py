"""`distlab chain put|get|status`: the chain-replicated store.

`put KEY VALUE` writes at the head and returns once the tail applied it; `get KEY [--node ID]
[--mode cr|craq]` reads at the tail (cr) or at `--node` or a random replica (craq); `status`
prints the chain as its members report it. Exit status: 0 done, 2 bad usage or no member
answering, 3 no outcome within `--timeout` (the message says whether a write may have
happened).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from distlab.cli.common import EXIT_OK, EXIT_UNKNOWN, UsageError, print_table
from distlab.cli.targets import add_cluster_arguments, resolve_members
from distlab.client._errors import Definite, Indefinite, Unavailable
from distlab.client.chain import ChainClient, ReplicaStatus
from distlab.core.ids import NodeId
from distlab.runtime import loop


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chain", help="the chain-replicated store (chain replication, CRAQ reads)",
        description="Write at the chain's head, read at its tail (cr) or at any replica "
                    "(craq), or show the chain.")
    commands = parser.add_subparsers(dest="chain_command", metavar="COMMAND", required=True)
    put = commands.add_parser("put", help="write KEY=VALUE at the head")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    get = commands.add_parser("get", help="read KEY")
    get.add_argument("key", metavar="KEY")
    get.add_argument("--node", type=int, metavar="ID", help="the replica to read at")
    get.add_argument("--mode", choices=("cr", "craq"), default="cr",
                     help="cr: at the tail (default); craq: at --node or a random replica")
    status = commands.add_parser("status", help="the chain: epoch, order, each replica")
    for each in (put, get, status):
        add_cluster_arguments(each)
        each.add_argument("--json", action="store_true", help="print JSON")
        each.add_argument("--timeout", type=float, default=10.0, metavar="S",
                          help="time budget in seconds (default 10)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    members = {node: str(address)
               for node, address in resolve_members(args.cluster, args.cluster_file).items()}
    if args.chain_command == "get" and args.node is not None:
        if args.node not in members:
            raise UsageError(f"--node {args.node} is not a member ({sorted(members)})")
        if args.mode == "cr":
            raise UsageError("--node reads at one replica: use it with --mode craq")
    return loop.run(_perform(ChainClient(members), args))


async def _perform(client: ChainClient, args: argparse.Namespace) -> int:
    try:
        if args.chain_command == "status":
            return _print_status(await client.status(min(args.timeout, 2.0)), args.json)
        key = os.fsencode(args.key)
        if args.chain_command == "put":
            seq = await client.put(key, os.fsencode(args.value), args.timeout)
            print(json.dumps({"ok": True, "seq": seq}) if args.json else f"ok (update {seq})")
            return EXIT_OK
        node = NodeId(args.node) if args.node is not None else None
        read = await client.get(key, args.mode, node, args.timeout)
        if args.json:
            print(json.dumps({"value": None if read.value is None else os.fsdecode(read.value),
                              "seq": read.seq, "how": read.how, "node": read.node}))
        elif read.value is not None:
            sys.stdout.buffer.write(read.value + b"\n")
            sys.stdout.flush()
        return EXIT_OK
    except Indefinite as error:
        print(f"distlab: {error}", file=sys.stderr)
        return EXIT_UNKNOWN
    except Unavailable as error:
        print(f"distlab: {error}", file=sys.stderr)
        return EXIT_UNKNOWN
    except Definite as error:
        raise UsageError(str(error)) from error
    finally:
        await client.close()


def _print_status(rows: list[ReplicaStatus], as_json: bool) -> int:
    answered = [row for row in rows if row.health == "up" and row.chain]
    newest = max(answered, key=lambda row: row.epoch) if answered else None
    chain = list(newest.chain) if newest is not None else []
    joining = newest.joining if newest is not None else 0

    def role(row: ReplicaStatus) -> str:
        if row.id == joining:
            return "joining"
        if row.id not in chain:
            return "out"
        if len(chain) == 1:
            return "head"
        return "head" if row.id == chain[0] else "tail" if row.id == chain[-1] else "middle"

    nodes = [{"id": row.id, "role": role(row), "sent": row.sent, "applied": row.applied,
              "health": row.health, "epoch": row.epoch} for row in rows]
    if as_json:
        print(json.dumps({"epoch": newest.epoch if newest else 0, "chain": chain,
                          "nodes": nodes}))
    else:
        print(f"epoch {newest.epoch if newest else 0}: chain "
              f"{' -> '.join(str(node) for node in chain) or '(unknown)'}"
              + (f", joining {joining}" if joining else ""))
        print_table(["id", "role", "sent", "applied", "epoch", "health"],
                    [[n["id"], n["role"], n["sent"], n["applied"], n["epoch"], n["health"]]
                     for n in nodes])
    return EXIT_OK if newest is not None else EXIT_UNKNOWN
