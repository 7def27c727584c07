"""`distlab kv get|put|append|delete|cas`: one operation on the replicated KV store.

Keys and values are byte strings. On the command line they are taken byte for byte as typed,
UTF-8 or not (Python hands such arguments over with surrogateescape; `os.fsencode` gives the
bytes back), or in hexadecimal (`--hex`) or base64 (`--base64`); values and keys are printed in
the same form. A value may also come from a file (`--value-file FILE`) or standard input
(`-`), as raw bytes, up to the store's limit (1 MiB).

Exit status: 0 done (a get of a missing key included), 1 a compare-and-set whose expected
value did not match, 2 bad usage, a request the store refuses, or a cluster none of whose
members accepts a connection (said at once, without waiting), 3 no outcome within the time
budget (the message says whether the operation may still have happened).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import select
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from distlab.apps.kv import MAX_VALUE_BYTES, value_too_large
from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE, UsageError
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.cli.tracing import command_tracing
from distlab.cli.waiting import progress_lines
from distlab.client import (
    Definite,
    InvalidRequest,
    KVClient,
    KVError,
    Rejected,
    Unreachable,
)
from distlab.runtime import loop
from distlab.wire.kv_bytes import describe, to_text

SPAN_FLUSH_TIMEOUT_MILLIS = 1000
STDIN = "-"

# operation -> (positional arguments after KEY, help)
OPERATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "get": ((), "print the value of KEY (nothing when it is absent)"),
    "put": (("VALUE",), "set KEY to VALUE"),
    "append": (("VALUE",), "append VALUE to KEY's value (a missing key counts as empty)"),
    "delete": ((), "remove KEY"),
    "cas": (("EXPECTED", "NEW"), "set KEY to NEW only if its value is EXPECTED (exit 1 if not)"),
}
# The operand --value-file stands for, per operation that writes a value.
VALUE_FILE_OPERAND = {"put": "value", "append": "value", "cas": "new"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kv",
        help="read and write the replicated key-value store",
        description="One linearizable operation on the KV store. Exit status: 0 done, 1 a "
        "cas that did not match, 2 bad usage, a refused request or no member reachable, "
        "3 no outcome in time.",
    )
    operations = parser.add_subparsers(dest="operation", metavar="OPERATION", required=True)
    for name, (arguments, help_text) in OPERATIONS.items():
        op_parser = operations.add_parser(name, help=help_text, description=help_text)
        op_parser.add_argument("key", metavar="KEY")
        for argument in arguments:
            from_file = VALUE_FILE_OPERAND.get(name) == argument.lower()
            op_parser.add_argument(
                argument.lower(), metavar=argument, nargs="?" if from_file else None,
                help="- reads it from standard input" + (" (or give --value-file)"
                                                        if from_file else ""))
        if name in VALUE_FILE_OPERAND:
            op_parser.add_argument(
                "--value-file", type=Path, metavar="FILE",
                help=f"read {VALUE_FILE_OPERAND[name].upper()} from FILE, as raw bytes "
                f"(at most {MAX_VALUE_BYTES} bytes)")
        forms = op_parser.add_mutually_exclusive_group()
        forms.add_argument("--hex", dest="form", action="store_const", const="hex",
                           help="KEY and values on the command line and in the output are "
                           "hexadecimal")
        forms.add_argument("--base64", dest="form", action="store_const", const="base64",
                           help="KEY and values on the command line and in the output are "
                           "base64")
        add_cluster_arguments(op_parser)
        op_parser.add_argument("--json", action="store_true", help="print the result as JSON")
        op_parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                               help="time budget for the operation, retries included (10 s)")
        op_parser.set_defaults(handler=run, form="text")


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    operands = read_operands(args)
    if not operands["key"]:
        raise UsageError("KEY must not be empty")
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    tracing = command_tracing()
    try:
        interceptors = tracing.client_interceptors() if tracing else ()
        client = KVClient(cluster, operation_timeout=args.timeout, interceptors=interceptors,
                          fail_when_unreachable=True)
        try:
            outcome = loop.run(perform(client, args.operation, operands, args.timeout))
        except InvalidRequest as error:
            print(f"distlab kv: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        except Rejected as error:
            print(f"distlab kv: error: {args.operation} refused: {error}", file=sys.stderr)
            return EXIT_USAGE
        except KVError as error:
            if args.operation == "get":
                verdict = "nothing was read"
            elif isinstance(error, Definite):
                verdict = f"the {args.operation} did not happen"
            else:
                verdict = f"the {args.operation} may or may not have happened"
            if isinstance(error, Unreachable):
                print(f"distlab kv: error: {error} ({verdict}; is the cluster running?)",
                      file=sys.stderr)
                return EXIT_USAGE
            print(f"distlab kv: error: {error} ({verdict})", file=sys.stderr)
            return EXIT_UNKNOWN
    finally:
        if tracing is not None:
            tracing.shutdown(SPAN_FLUSH_TIMEOUT_MILLIS)
    return report(args, operands, outcome)


# ---- operands: the command line's forms, files and standard input ----

def read_operands(args: argparse.Namespace) -> dict[str, bytes]:
    """KEY and the values the operation takes, as bytes."""
    names = [argument.lower() for argument in OPERATIONS[args.operation][0]]
    from_file = VALUE_FILE_OPERAND.get(args.operation)
    value_file: Path | None = getattr(args, "value_file", None)
    if from_file is not None:
        given = getattr(args, from_file)
        if given is None and value_file is None:
            raise UsageError(f"{args.operation} needs {from_file.upper()}, - (standard input) "
                             "or --value-file FILE")
        if given is not None and value_file is not None:
            raise UsageError(f"give {from_file.upper()} or --value-file, not both")
    if [getattr(args, name) for name in names].count(STDIN) > 1:
        raise UsageError("only one value can come from standard input (-)")
    operands = {"key": command_line_bytes(args.key, args.form, "KEY")}
    for name in names:
        text = getattr(args, name)
        if text is None:
            assert value_file is not None
            operands[name] = read_value_file(value_file)
        elif text == STDIN:
            operands[name] = read_value(sys.stdin.buffer, "the value on standard input")
        else:
            operands[name] = command_line_bytes(text, args.form, name.upper())
    return operands


def command_line_bytes(text: str, form: str, what: str) -> bytes:
    """The bytes an argument stands for in `form` (text: the argument's own bytes)."""
    if form == "hex":
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise UsageError(f"{what} is not hexadecimal: {describe(os.fsencode(text))}") from None
    if form == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"{what} is not base64: {describe(os.fsencode(text))}") from None
    return os.fsencode(text)


def read_value_file(path: Path) -> bytes:
    what = f"the value in {path}"
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno())
            if stat.S_ISREG(size.st_mode) and size.st_size > MAX_VALUE_BYTES:
                raise UsageError(value_too_large(what, size.st_size))
            return read_value(file, what)
    except OSError as error:
        raise UsageError(f"cannot read --value-file {path}: {error.strerror}") from None


def read_value(stream: BinaryIO, what: str) -> bytes:
    """Up to the store's limit of bytes from `stream`; more is a usage error, found without
    reading the rest."""
    data = stream.read(MAX_VALUE_BYTES + 1)
    if len(data) > MAX_VALUE_BYTES:
        raise UsageError(value_too_large(what, f"at least {len(data)}"))
    return data


def rendered(data: bytes, form: str) -> str:
    """`data` in `form`, for JSON (text: the str form, a non-UTF-8 byte as a lone surrogate,
    which JSON writes as a \\udcNN escape)."""
    if form == "hex":
        return data.hex()
    if form == "base64":
        return base64.b64encode(data).decode("ascii")
    return to_text(data)


# ---- the operation and its result ----

async def perform(client: KVClient, operation: str, operands: dict[str, bytes],
                  timeout: float) -> dict[str, Any]:
    """Run the operation; its result, with bytes as they are (see `report`)."""

    def waiting(seconds: float) -> str:
        return (f"no answer after {seconds:.0f} s of {timeout:g} s; "
                f"{client.last_failure or 'no attempt has failed yet'}")

    async with client, progress_lines("distlab kv", waiting):
        key = operands["key"]
        if operation == "get":
            value = await client.get_bytes(key)
            return {"op": "get", "key": key, "found": value is not None, "value": value}
        if operation == "put":
            await client.put(key, operands["value"])
            return {"op": "put", "key": key, "value": operands["value"]}
        if operation == "append":
            await client.append(key, operands["value"])
            return {"op": "append", "key": key, "value": operands["value"]}
        if operation == "delete":
            found = await client.delete(key)
            return {"op": "delete", "key": key, "found": found}
        assert operation == "cas", operation
        ok = await client.cas(key, operands["expected"], operands["new"])
        return {"op": "cas", "key": key, "expected": operands["expected"],
                "value": operands["new"], "ok": ok}


def report(args: argparse.Namespace, operands: dict[str, bytes], outcome: dict[str, Any]
           ) -> int:
    status = EXIT_CHECK_FAILED if outcome.get("ok") is False else EXIT_OK
    if args.json:
        print(json.dumps({name: rendered(value, args.form) if isinstance(value, bytes) else value
                          for name, value in outcome.items()}))
        return status
    op = outcome["op"]
    key = describe(operands["key"])
    if op == "get":
        if outcome["found"]:
            value: bytes = outcome["value"]
            if args.form == "text":
                # The value's own bytes, whatever they are: stdout's text layer would refuse
                # bytes that are not UTF-8. Written whole even to a pipe another process left
                # non-blocking (the flag belongs to the pipe, shared by all who write to it):
                # a buffered write there may take only what fits and keep the rest.
                sys.stdout.flush()
                write_whole(sys.stdout, value + b"\n")
            else:
                print(rendered(value, args.form))
        else:
            print(f"(key {key} not found)", file=sys.stderr)
    elif op == "delete":
        print("deleted" if outcome["found"] else f"(key {key} did not exist)")
    elif op == "cas":
        print("ok" if outcome["ok"] else
              f"cas failed: the value of {key} is not {describe(operands['expected'])}; "
              "nothing changed")
    else:
        print("ok")
    return status


def write_whole(stream: TextIO, data: bytes) -> None:
    """Write all of `data` to `stream`'s descriptor, waiting for room when it is non-blocking
    (to its bytes layer when it has no descriptor: a stream held in memory)."""
    try:
        fd = stream.fileno()
    except (io.UnsupportedOperation, AttributeError):
        stream.buffer.write(data)
        stream.buffer.flush()
        return
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[written:]
