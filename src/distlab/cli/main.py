"""The `distlab` command: one sub-command per module, each registering its own parser.

Exit statuses (shared by every sub-command): 0 success, 1 a check that failed,
2 bad usage or input, 3 unknown (a budget ran out), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from distlab import __version__
from distlab.cli import (
    bench,
    chaos,
    cluster,
    common,
    jepsen,
    kv,
    lincheck,
    mr,
    node,
    sim,
    status,
    up,
)

# Each module exposes `register(subparsers)`, which adds its parser and sets `handler`
# to a function taking the parsed arguments and returning the exit status.
COMMANDS: tuple[ModuleType, ...] = (
    node,
    up,
    status,
    cluster,
    lincheck,
    sim,
    mr,
    kv,
    bench,
    chaos,
    jepsen,
)


def build_parser() -> argparse.ArgumentParser:
    parser = common.ArgumentParser(
        prog="distlab",
        description="Run, break and watch classic distributed-systems protocols.",
    )
    parser.add_argument("--version", action="version", version=f"distlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
