"""`distlab test`: a Jepsen-style run against the live KV store.

Clients invoke a mix of get, put, append and cas at a rate while a nemesis kills, pauses
or partitions nodes on a schedule; after a final heal, a quiet period and one last read of
every key, the history is checked for linearizability and a report is written.

With `--workload bank` the clients instead move money between accounts in 2PC or 3PC
transactions and read every account; the bank checker (distlab.check.check_bank) checks that
money is conserved and each transfer applied whole and once, and lists transactions left
blocked after the heal. `--workload external-consistency` runs the bank over consensus
groups with Spanner's timestamps (transfers, read-only transactions, snapshot reads at
recent timestamps, and back-to-back pairs across clocks that `--clock-skews` sets apart),
checked by the bank checker and by the external-consistency checker
(distlab.check.check_external).

Exit status 0 linearizable (bank: no violation), 1 not linearizable (bank: a violation), 2
bad usage, 3 unknown (the check ran out of time, or no verdict could be reached), 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from distlab.check.tester.mix import DEFAULT_MIX, MixError, parse_mix
from distlab.check.tester.report import HISTORY_FILE
from distlab.check.tester.schedule import (
    FAULTS,
    ScheduleError,
    describe_plan,
    fit_warning,
    is_kill,
    is_pause,
    is_txn_crash,
    parse_nemesis,
    plan_schedule,
    strikes_transactions,
)
from distlab.cli import common
from distlab.cli.progress import Progress
from distlab.cli.targets import resolve_members
from distlab.cli.up import parse_clock_skews
from distlab.core.ids import NodeId
from distlab.ops.docker import compose_node_addresses
from distlab.ops.tester import RunSettings, format_summary, run_until_interrupted
from distlab.ops.tester.external import ACCOUNTS_PER_GROUP
from distlab.ops.tester.runner import BANK, EXTERNAL
from distlab.runtime import loop
from distlab.runtime.config import ENGINES, MAX_GROUPS
from distlab.wire.addresses import Address, ConfigError

MAX_NODES = 9
DEFAULT_FAULTS = "kill,pause,partition"
BANK_ACCOUNTS = 5


def register(subparsers: Any) -> None:
    faults = "; ".join(f"{name}: {what}" for name, what in FAULTS.items())
    parser = subparsers.add_parser(
        "test", help="a Jepsen-style run: workload, faults, linearizability check, report",
        description="Start a cluster (or use --cluster), run concurrent clients against its "
        "KV store while a nemesis injects faults, then check the history for "
        "linearizability (or, with --workload bank, for conservation of money; with "
        "--workload external-consistency, for that and for external consistency) and "
        "write a report directory. Exit status: 0 linearizable (bank: valid), 1 not "
        "linearizable (bank: a violation), 2 bad usage, 3 unknown.",
        epilog=f"Faults for --nemesis: {faults}.")
    where = parser.add_argument_group("cluster")
    where.add_argument("--nodes", type=int, default=3, metavar="N",
                       help="size of the cluster the test starts (default 3)")
    where.add_argument("--groups", type=int, default=None, metavar="G",
                       help="KV shards of the cluster the test starts, each a replicated "
                       "group (default 1; 3 with --participants groups and "
                       "--workload external-consistency)")
    where.add_argument("--engine", choices=ENGINES, default=None,
                       help="consensus engine of the cluster the test starts (default raft)")
    where.add_argument("--clock-skews", metavar="MS,...",
                       help="offsets of the started nodes' wall clocks in ms, one per node "
                       "in id order (each node's CLOCK_SKEW_MS, as for `distlab up`)")
    where.add_argument("--data-dir", type=Path, metavar="DIR",
                       help="state and logs of the started nodes (default REPORT/cluster)")
    where.add_argument("--project", metavar="NAME",
                       help="with --compose: the compose project (default: the one running)")
    chosen = where.add_mutually_exclusive_group()
    chosen.add_argument("--compose", action="store_true",
                        help="test the docker compose cluster at its published ports; kill "
                        "and pause act on its containers")
    chosen.add_argument("--cluster", metavar="ADDRS",
                        help="test a running cluster, 1=host:port,... (partitions only)")
    chosen.add_argument("--cluster-file", metavar="FILE", type=Path,
                        help="test the running cluster described by a cluster.json")
    work = parser.add_argument_group("workload")
    work.add_argument("--workload", choices=("kv", BANK, EXTERNAL), default="kv",
                      help="kv: get/put/append/cas/delete checked for linearizability (the "
                           "default); bank: transfers between accounts in transactions and "
                           "reads of every account, checked for conservation and for each "
                           "transfer applied whole and once; external-consistency: the bank "
                           "over groups with Spanner's timestamps, read-only transactions "
                           "and snapshot reads, checked for external consistency too")
    work.add_argument("--protocol", choices=("2pc", "3pc"), default="2pc",
                      help="with --workload bank: the commit protocol (default 2pc)")
    work.add_argument("--participants", choices=("nodes", "groups"), default=None,
                      help="with --workload bank: each node one participant (nodes, the "
                           "default) or each consensus group one (groups; the cluster the "
                           "test starts then has 3 groups unless --groups says otherwise); "
                           "external-consistency runs over groups")
    work.add_argument("--accounts", type=int, default=None, metavar="N",
                      help=f"with --workload bank: number of accounts (default "
                           f"{BANK_ACCOUNTS}); with external-consistency: in all, at least "
                           f"{ACCOUNTS_PER_GROUP} per group (default {ACCOUNTS_PER_GROUP} per "
                           "group)")
    work.add_argument("--time-limit", type=_positive, default=60.0, metavar="S",
                      help="seconds of workload and faults (default 60)")
    work.add_argument("--rate", type=_positive, default=20.0, metavar="OPS",
                      help="operations per second, all clients together (default 20)")
    work.add_argument("--concurrency", type=int, default=5, metavar="N",
                      help="concurrent clients (default 5)")
    work.add_argument("--keys", type=int, default=5, metavar="N",
                      help="number of keys the operations spread over (default 5)")
    work.add_argument("--mix", default=DEFAULT_MIX, metavar="MIX",
                      help=f"relative weights of get, put, append, cas, delete "
                           f"(default {DEFAULT_MIX})")
    work.add_argument("--system", choices=("kv", "chain"), default="kv",
                      help="the store under test: the KV store on the groups (default) or "
                           "the chain (get and put only)")
    work.add_argument("--read-mode", choices=("cr", "craq"), default="cr",
                      help="with --system chain: reads at the tail (cr, default) or at any "
                           "replica (craq)")
    work.add_argument("--op-timeout", type=_positive, default=5.0, metavar="S",
                      help="time budget of one operation, retries included (default 5)")
    work.add_argument("--read-from-any", action="store_true",
                      help="send each get to a random member instead of the leader")
    nemesis = parser.add_argument_group("faults")
    nemesis.add_argument("--nemesis", metavar="FAULTS",
                         help=f"comma-separated faults, taken in turn, or none (default "
                              f"{DEFAULT_FAULTS}; partition with --cluster)")
    nemesis.add_argument("--nemesis-interval", type=_positive, default=10.0, metavar="S",
                         help="length of each fault window and of each healthy stretch "
                              "between them (default 10)")
    nemesis.add_argument("--quiet", type=_non_negative, default=3.0, metavar="S",
                         help="healthy seconds after the final heal, before the final "
                              "reads (default 3)")
    nemesis.add_argument("--seed", type=int, metavar="N",
                         help="seed for the workload and the nemesis (default: from the clock)")
    out = parser.add_argument_group("checking and report")
    out.add_argument("--check-timeout", type=_positive, default=120.0, metavar="S",
                     help="time budget of the linearizability check (default 120)")
    out.add_argument("--report", type=Path, metavar="DIR",
                     help="report directory (default reports/<timestamp>)")
    out.add_argument("--json", action="store_true",
                     help="print result.json instead of the summary line")
    parser.set_defaults(handler=run)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def default_report_dir() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = Path("reports") / stamp
    number = 1
    while candidate.exists():
        number += 1
        candidate = Path("reports") / f"{stamp}-{number}"
    return candidate


def settings_from(args: argparse.Namespace) -> RunSettings:
    """Validate the arguments; every problem is a UsageError."""
    if args.compose:
        try:
            addresses: Mapping[NodeId, Address] | None = compose_node_addresses()
        except ConfigError as error:
            raise common.UsageError(str(error)) from error
        external = False
    else:
        external = args.cluster is not None or args.cluster_file is not None
        addresses = resolve_members(args.cluster, args.cluster_file) if external else None
    if not external and not 1 <= args.nodes <= MAX_NODES:
        raise common.UsageError(f"--nodes must be between 1 and {MAX_NODES}, got {args.nodes}")
    transactions = args.workload in (BANK, EXTERNAL)
    if args.participants is not None and not transactions:
        raise common.UsageError("--participants is for --workload bank")
    if args.workload == EXTERNAL:
        if args.participants == "nodes":
            raise common.UsageError("--workload external-consistency runs over groups "
                                    "(Spanner's timestamps): not --participants nodes")
        if args.protocol != "2pc":
            raise common.UsageError("--workload external-consistency commits with 2PC over "
                                    "groups (3PC assigns no timestamps)")
        args.participants = "groups"
    elif args.participants is None:
        args.participants = "nodes"
    if args.groups is None:
        args.groups = 3 if args.participants == "groups" and addresses is None else 1
    elif addresses is not None:
        raise common.UsageError("--groups sets up a cluster the test starts; a running "
                                "cluster keeps its own groups")
    if not 1 <= args.groups <= MAX_GROUPS:
        raise common.UsageError(f"--groups must be between 1 and {MAX_GROUPS}, got "
                                f"{args.groups}")
    if addresses is not None and args.engine is not None:
        raise common.UsageError("--engine sets up a cluster the test starts; a running "
                                "cluster keeps its own engine")
    if args.read_mode != "cr" and args.system != "chain":
        raise common.UsageError("--read-mode is for --system chain")
    if args.concurrency < 1:
        raise common.UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.keys < 1:
        raise common.UsageError(f"--keys must be at least 1, got {args.keys}")
    if transactions and args.system != "kv":
        raise common.UsageError(f"--workload {args.workload} moves money in transactions; "
                                "it does not run on --system chain")
    if args.workload == BANK and args.accounts is None:
        args.accounts = BANK_ACCOUNTS
    if args.workload == BANK and args.accounts < 2:
        raise common.UsageError(f"--accounts must be at least 2, got {args.accounts}")
    if args.workload == EXTERNAL:
        if addresses is None and args.groups < 2:
            raise common.UsageError("--workload external-consistency needs at least 2 "
                                    "groups: its pairs of transactions run on two")
        least = ACCOUNTS_PER_GROUP * (args.groups if addresses is None else 1)
        if args.accounts is not None and args.accounts < least:
            raise common.UsageError(f"--accounts must be at least {least} "
                                    f"({ACCOUNTS_PER_GROUP} per group), got {args.accounts}")
    clock_skews = None
    if args.clock_skews is not None:
        if addresses is not None:
            raise common.UsageError("--clock-skews sets the clocks of a cluster the test "
                                    "starts; a running cluster keeps its own")
        clock_skews = tuple(parse_clock_skews(
            args.clock_skews, [NodeId(index + 1) for index in range(args.nodes)]).values())
    try:
        if args.system == "chain":
            mix = parse_mix(CHAIN_MIX if args.mix == DEFAULT_MIX else args.mix, ("get", "put"))
        else:
            mix = parse_mix(args.mix)
        faults = parse_nemesis(args.nemesis or ("partition" if external else DEFAULT_FAULTS))
        schedule = plan_schedule(faults, args.nemesis_interval, args.time_limit)
    except (MixError, ScheduleError) as error:
        raise common.UsageError(str(error)) from None
    if faults and not schedule:
        raise common.UsageError(
            f"no fault fits: --time-limit ({args.time_limit:g} s) must be at least twice "
            f"--nemesis-interval ({args.nemesis_interval:g} s)")
    if not transactions and any(strikes_transactions(f) for f in faults):
        raise common.UsageError("txn-crash and txn-partition faults strike transactions: "
                                "use them with --workload bank")
    if external and any(is_kill(f) or is_pause(f) or is_txn_crash(f) for f in faults):
        raise common.UsageError("kill, pause and txn-crash need node processes the test "
                                "starts; with --cluster or --cluster-file use --nemesis "
                                "partition or none")
    size = len(addresses) if addresses is not None else args.nodes
    if size < 3 and faults:
        raise common.UsageError(f"faults need a cluster of at least 3 nodes, not {size}")
    report_dir: Path = args.report or default_report_dir()
    if (report_dir / HISTORY_FILE).exists():
        raise common.UsageError(f"{report_dir} already holds a run ({HISTORY_FILE}); "
                                "choose another --report directory")
    seed = args.seed if args.seed is not None else time.time_ns() % 2**31
    return RunSettings(
        report_dir=report_dir, time_limit=args.time_limit, rate=args.rate,
        concurrency=args.concurrency, keys=args.keys, mix=mix, faults=faults,
        nemesis_interval=args.nemesis_interval, quiet=args.quiet,
        operation_timeout=args.op_timeout, check_timeout=args.check_timeout,
        read_from_any=args.read_from_any, seed=seed, nodes=args.nodes, groups=args.groups,
        engine=args.engine or "raft", data_dir=args.data_dir, addresses=addresses,
        compose=args.compose, compose_project=args.project, workload=args.workload,
        protocol=args.protocol, participants=args.participants, accounts=args.accounts,
        system=args.system, read_mode=args.read_mode, clock_skews=clock_skews)


# The chain stores values with put and reads them with get; nothing else.
CHAIN_MIX = "get=0.5,put=0.5"


def elapsed_prefix() -> Callable[[], str]:
    """`distlab test [ 12.3 s]: `, the seconds since the command started, before each line."""
    started = time.monotonic()
    return lambda: f"distlab test [{time.monotonic() - started:5.1f} s]: "


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with Progress("distlab test", total=settings.time_limit, json=args.json,
                  prefix=elapsed_prefix()) as progress:
        progress.log(f"report in {settings.report_dir}; seed {settings.seed}; "
                     f"nemesis {','.join(settings.faults) or 'none'}")
        if settings.faults:
            planned = plan_schedule(settings.faults, settings.nemesis_interval,
                                    settings.time_limit)
            progress.log(f"fault windows: {describe_plan(planned)} (a heal that takes time "
                         "moves the windows after it back as long)")
            warning = fit_warning(settings.faults, settings.nemesis_interval,
                                  settings.time_limit)
            if warning is not None:
                progress.log(f"warning: {warning}")
        outcome = loop.run(run_until_interrupted(settings, progress))
    if outcome is None:
        return common.EXIT_INTERRUPTED
    if isinstance(outcome, str):
        print(f"distlab test: error: {outcome}", file=sys.stderr)
        return common.EXIT_UNKNOWN
    if args.json:
        print(json.dumps(outcome.document, indent=2))
    else:
        print(format_summary(outcome), flush=True)
    return outcome.exit_status
