"""`distlab kv get|put|append|delete|cas`: one operation on the replicated KV store.

Exit status: 0 done (a get of a missing key included), 1 a compare-and-set whose expected
value did not match, 2 bad usage or a request the store refuses, 3 no outcome within the
time budget (the message says whether the operation may still have happened).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE, UsageError
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.client import Definite, InvalidRequest, KVClient, KVError, Rejected
from distlab.runtime import loop
from distlab.telemetry.tracing import setup_tracing

CLIENT_SERVICE_NAME = "distlab-client"
SPAN_FLUSH_TIMEOUT_MILLIS = 1000

# operation -> (positional arguments after KEY, help)
OPERATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "get": ((), "print the value of KEY (nothing when it is absent)"),
    "put": (("VALUE",), "set KEY to VALUE"),
    "append": (("VALUE",), "append VALUE to KEY's value (a missing key counts as empty)"),
    "delete": ((), "remove KEY"),
    "cas": (("EXPECTED", "NEW"), "set KEY to NEW only if its value is EXPECTED (exit 1 if not)"),
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kv",
        help="read and write the replicated key-value store",
        description="One linearizable operation on the KV store. Exit status: 0 done, 1 a "
        "cas that did not match, 2 bad usage, 3 no outcome in time.",
    )
    operations = parser.add_subparsers(dest="operation", metavar="OPERATION", required=True)
    for name, (arguments, help_text) in OPERATIONS.items():
        op_parser = operations.add_parser(name, help=help_text, description=help_text)
        op_parser.add_argument("key", metavar="KEY")
        for argument in arguments:
            op_parser.add_argument(argument.lower(), metavar=argument)
        add_cluster_arguments(op_parser)
        op_parser.add_argument("--json", action="store_true", help="print the result as JSON")
        op_parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                               help="time budget for the operation, retries included (10 s)")
        op_parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.key:
        raise UsageError("KEY must not be empty")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    tracing = None
    otlp_endpoint = (os.environ.get("OTLP_ENDPOINT") or "").strip() or None
    if otlp_endpoint:
        tracing = setup_tracing(CLIENT_SERVICE_NAME, otlp_endpoint)
    try:
        interceptors = tracing.client_interceptors() if tracing else ()
        client = KVClient(cluster, operation_timeout=args.timeout, interceptors=interceptors)
        try:
            outcome = loop.run(perform(client, args))
        except InvalidRequest as error:
            print(f"distlab kv: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        except Rejected as error:
            print(f"distlab kv: error: {args.operation} refused: {error}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        except KVError as error:
            if args.operation == "get":
                verdict = "nothing was read"
            elif isinstance(error, Definite):
                verdict = f"the {args.operation} did not happen"
            else:
                verdict = f"the {args.operation} may or may not have happened"
            print(f"distlab kv: error: {error} ({verdict})", file=sys.stderr)
            return EXIT_UNKNOWN
    finally:
        if tracing is not None:
            tracing.shutdown(SPAN_FLUSH_TIMEOUT_MILLIS)
    return report(args, outcome)


async def perform(client: KVClient, args: argparse.Namespace) -> dict[str, Any]:
    """Run the operation and describe its result as the JSON output shows it."""
    async with client:
        key = args.key
        if args.operation == "get":
            value = await client.get(key)
            return {"op": "get", "key": key, "found": value is not None, "value": value}
        if args.operation == "put":
            await client.put(key, args.value)
            return {"op": "put", "key": key, "value": args.value}
        if args.operation == "append":
            await client.append(key, args.value)
            return {"op": "append", "key": key, "value": args.value}
        if args.operation == "delete":
            found = await client.delete(key)
            return {"op": "delete", "key": key, "found": found}
        assert args.operation == "cas", args.operation
        ok = await client.cas(key, args.expected, args.new)
        return {"op": "cas", "key": key, "expected": args.expected, "value": args.new, "ok": ok}


def report(args: argparse.Namespace, outcome: dict[str, Any]) -> int:
    status = EXIT_CHECK_FAILED if outcome.get("ok") is False else EXIT_OK
    if args.json:
        print(json.dumps(outcome))
        return status
    op = outcome["op"]
    if op == "get":
        if outcome["found"]:
            print(outcome["value"])
        else:
            print(f"(key {args.key!r} not found)", file=sys.stderr)
    elif op == "delete":
        print("deleted" if outcome["found"] else f"(key {args.key!r} did not exist)")
    elif op == "cas":
        print("ok" if outcome["ok"] else
              f"cas failed: the value of {args.key!r} is not {args.expected!r}; nothing changed")
    else:
        print("ok")
    return status
