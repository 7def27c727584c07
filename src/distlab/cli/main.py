"""The `distlab` command: one sub-command per module, each registering its own parser.

Exit statuses (shared by every sub-command): 0 success, 1 a check that failed,
2 bad usage or input, 3 unknown (a budget ran out), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from distlab.cli import common

# Sub-command name -> the module that registers it. Each module exposes `register(subparsers)`,
# which adds its parser (under this name) and sets `handler` to a function taking the parsed
# arguments and returning the exit status. Only the invoked command's module is imported:
# importing them all pulls in gRPC, the Raft runtime and the MapReduce runtime, about 0.7 s of
# CPU that every `distlab kv get` and every worker process would pay for nothing.
COMMANDS: dict[str, str] = {
    "node": "distlab.cli.node",
    "up": "distlab.cli.up",
    "status": "distlab.cli.status",
    "cluster": "distlab.cli.cluster",
    "lincheck": "distlab.cli.lincheck",
    "sim": "distlab.cli.sim",
    "mr": "distlab.cli.mr",
    "kv": "distlab.cli.kv",
    "txn": "distlab.cli.txn",
    "chain": "distlab.cli.chain",
    "bench": "distlab.cli.bench",
    "chaos": "distlab.cli.chaos",
    "test": "distlab.cli.jepsen",
}


class _VersionAction(argparse.Action):
    """`--version`: the installed version is looked up when asked for, not at every start
    (reading the package metadata takes tens of milliseconds)."""

    def __init__(self, option_strings: Sequence[str], dest: str) -> None:
        super().__init__(option_strings, dest, nargs=0,
                         help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from distlab import __version__

        print(f"distlab {__version__}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command` alone, or for every command when it is None."""
    parser = common.ArgumentParser(
        prog="distlab",
        description="Run, break and watch classic distributed-systems protocols.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).register(subparsers)
    return parser


def invoked_command(argv: Sequence[str]) -> str | None:
    """The sub-command `argv` names, when its first argument is one (else None: top-level
    help, a version query or a mistake, which all need every command's parser)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


# gRPC's C core writes its own log lines to stderr (`fork_posix.cc:71 ... skipping fork()
# handlers` when a node is started, transport details), which land in the middle of a
# command's output and of node logs. It reads this variable once, when grpc is imported, so
# the default is set before any command's module is; GRPC_VERBOSITY=INFO (or DEBUG, ERROR)
# brings the lines back. Processes the command starts inherit the setting.
GRPC_VERBOSITY_DEFAULT = "NONE"


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("GRPC_VERBOSITY", GRPC_VERBOSITY_DEFAULT)
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(invoked_command(arguments)).parse_args(arguments)
    try:
        status_code: int = args.handler(args)
    except KeyboardInterrupt:
        return common.EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`distlab ... | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return common.EXIT_OK
    except common.UsageError as error:
        print(f"distlab: error: {error}", file=sys.stderr)
        return common.EXIT_USAGE
    return status_code


if __name__ == "__main__":
    sys.exit(main())
