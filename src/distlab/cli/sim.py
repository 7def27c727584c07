"""`distlab sim PROTOCOL`: deterministic simulations, one seed or a sweep of many.

`--seed N` replays one run and prints its event trace; `--seeds K [--start S]` runs K seeds
and lists every one that failed (with `--bug NAME`, the sweep stops at the first); `--shrink`
reduces the failing run's fault schedule and prints what is left; `--list-bugs` prints the
protocol's bug catalogue. A failing seed replays exactly with `--seed`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNKNOWN, UsageError
from distlab.cli.progress import Progress
from distlab.protocols.txn import Protocol as TxnProtocol
from distlab.sim import harness
from distlab.sim.faults import FAMILIES, FaultMix
from distlab.sim.harness import CHAOS_MS, CLUSTER_SIZES, RunResult
from distlab.sim.txn import FAULT_MODES as TXN_FAULT_MODES
from distlab.sim.txn import PARTICIPANTS as TXN_PARTICIPANTS
from distlab.sim.txn import variant as txn_variant
from distlab.sim.txn.groups import ENGINES as TXN_GROUP_ENGINES


def register(subparsers: Any) -> None:
    names = [spec.name for spec in harness.protocols()]
    parser = subparsers.add_parser(
        "sim",
        help="deterministic simulations and seed sweeps",
        description=(
            "Run a protocol's real driver and cores on virtual time with seeded network, "
            "disk and clock faults, every invariant checked at every step and the clients' "
            "history checked for linearizability. Run one seed with its event trace (--seed "
            "N) or sweep many (--seeds K). Cluster sizes default to 3, 5 and 7 by seed. Exit "
            "status 1 if a run fails."
        ),
    )
    parser.add_argument("subject", choices=names, metavar="PROTOCOL",
                        help=f"the protocol to simulate: {', '.join(names)}")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, help="run one seed and print its trace")
    which.add_argument("--seeds", type=int, metavar="K", help="run K seeds")
    parser.add_argument("--start", type=int, default=1, help="first seed of a sweep (default 1)")
    parser.add_argument("--nodes", type=int, choices=CLUSTER_SIZES,
                        help="cluster size (default: 3, 5 or 7 chosen by seed)")
    parser.add_argument("--bug", action="append", default=[], metavar="NAME",
                        help="plant a bug of the catalogue (see --list-bugs); a sweep stops at "
                             "the first failing seed")
    parser.add_argument("--list-bugs", action="store_true",
                        help="print the bug catalogue, one 'NAME: what it breaks' a line")
    parser.add_argument("--shrink", action="store_true",
                        help="reduce the failing run's fault schedule and print it")
    parser.add_argument("--jobs", type=int, default=1, metavar="J",
                        help="run a sweep in J processes (default 1)")
    parser.add_argument("--chaos-ms", type=float, default=CHAOS_MS, metavar="MS",
                        help=f"virtual milliseconds of faults before healing (default "
                             f"{CHAOS_MS:g})")
    for family in FAMILIES:
        parser.add_argument(f"--no-{family}-faults", action="store_true",
                            help=f"draw no {family} faults")
    parser.add_argument("--read-mode", choices=("cr", "craq"),
                        help="chain: read at the tail (cr) or at any replica (craq); "
                             "default: chosen by seed")
    parser.add_argument("--keep-unsynced", action="store_true",
                        help="disks never lose what was written but not fsynced")
    txn = parser.add_argument_group("transactions (txn)")
    txn.add_argument("--protocol", choices=("2pc", "3pc"), default="2pc",
                     help="txn: the commit protocol (default 2pc)")
    txn.add_argument("--participants", choices=TXN_PARTICIPANTS, default="nodes",
                     help="txn: each node one unreplicated participant, or each consensus "
                          "group one participant (default nodes)")
    txn.add_argument("--engine", choices=TXN_GROUP_ENGINES,
                     help="txn over groups: the groups' consensus engine (default: chosen "
                          "by seed)")
    txn.add_argument("--faults", choices=TXN_FAULT_MODES, default="all",
                     help="txn: all fault kinds (partitions included), crashes only on a "
                          "network that loses nothing, or partitions only (default all)")
    parser.add_argument("--no-trace", action="store_true", help="with --seed: only the outcome")
    parser.add_argument("--vclock-log", metavar="FILE",
                        help="with --seed: write every message sent and received, with its "
                             "nodes' vector clocks, to FILE in ShiViz's log format")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = harness.protocol(args.subject)
    if spec.name == "txn":
        spec = txn_variant(TxnProtocol(args.protocol), args.faults, args.participants)
    elif args.protocol != "2pc" or args.faults != "all" or args.participants != "nodes":
        raise UsageError("--protocol, --participants and --faults apply to txn only")
    if args.list_bugs:
        for name, breaks in sorted(spec.bugs.items()):
            print(f"{name}: {breaks}")
        return EXIT_OK
    unknown = [name for name in args.bug if name not in spec.bugs]
    if unknown:
        raise UsageError(f"unknown bug {unknown[0]!r} for {spec.name}; see --list-bugs")
    if args.chaos_ms < 0:
        raise UsageError("--chaos-ms must not be negative")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.seed is None and args.seeds is None:
        raise UsageError("give --seed N, --seeds K or --list-bugs")
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if args.vclock_log is not None and args.seed is None:
        raise UsageError("--vclock-log writes one run's messages: give --seed N")
    mix = FaultMix(network=not args.no_network_faults, disk=not args.no_disk_faults,
                   clock=not args.no_clock_faults, lose_unsynced=not args.keep_unsynced)
    bugs = frozenset(args.bug)
    args.variants = {}
    if args.read_mode is not None:
        if "read-mode" not in spec.variants:
            raise UsageError(f"--read-mode is for chain, not {spec.name}")
        args.variants["read-mode"] = args.read_mode
    if args.engine is not None:
        if "engine" not in spec.variants:
            raise UsageError("--engine is for txn --participants groups")
        args.variants["engine"] = args.engine
    if args.seed is not None:
        return _run_one(spec, args, bugs, mix)
    return _run_sweep(spec, args, bugs, mix)


def _run_one(spec: harness.ProtocolSpec, args: argparse.Namespace, bugs: frozenset[str],
             mix: FaultMix) -> int:
    trace = not args.no_trace and not args.shrink
    plan = harness.plan_run(spec, args.seed, args.nodes, bugs=bugs, mix=mix,
                            chaos_ms=args.chaos_ms, variants=args.variants)
    with contextlib.ExitStack() as stack:
        vclock_log = None
        if args.vclock_log is not None:
            try:
                vclock_log = stack.enter_context(open(args.vclock_log, "w", encoding="utf-8"))
            except OSError as error:
                raise UsageError(f"--vclock-log {args.vclock_log}: {error.strerror}") from None
        result, world = harness.execute(
            spec, plan, trace=trace, vclock_log=vclock_log.write if vclock_log else None)
    if args.shrink:
        return _shrink(spec, plan, result, args)
    if args.json:
        body: dict[str, Any] = result.as_dict()
        body["replay"] = plan.replay_command()
        if trace:
            body["trace"] = world.trace
        print(json.dumps(body, indent=2))
    else:
        if trace:
            sys.stdout.write(world.trace_text())
        print(_outcome(result))
    return _status(result)


def _run_sweep(spec: harness.ProtocolSpec, args: argparse.Namespace, bugs: frozenset[str],
               mix: FaultMix) -> int:
    seeds = range(args.start, args.start + args.seeds)

    done = failed = 0
    started = time.monotonic()
    # A live bar on a terminal, plain status lines (stderr) otherwise; every failure is a
    # line of its own.
    with Progress(f"distlab sim {spec.name}", total=len(seeds), json=args.json) as progress:

        def show(result: RunResult) -> None:
            nonlocal done, failed
            done += 1
            if not result.ok:
                failed += 1
                if not args.json:
                    # On stdout, as the summary; a live bar keeps it above itself.
                    print(_outcome(result), flush=True)
            progress.update(done, status=f"seed {result.seed}, {failed} failed")

        report = harness.sweep(spec, seeds, args.nodes, bugs=bugs, mix=mix,
                               stop_after_failures=1 if bugs or args.shrink else None,
                               chaos_ms=args.chaos_ms, jobs=args.jobs, on_result=show,
                               variants=args.variants)
    wall_seconds = time.monotonic() - started
    results, failures = report.results, report.failures
    rate = len(results) / wall_seconds if wall_seconds > 0 else 0.0
    if args.json:
        print(json.dumps({
            "protocol": spec.name, "bugs": sorted(bugs), "runs": len(results),
            "first_seed": seeds.start, "last_seed": results[-1].seed if results else None,
            "failed": len(failures), "failures": [failure.as_dict() for failure in failures],
            "unknown": [result.seed for result in report.unknown],
            "messages": sum(result.messages for result in results),
            "wall_seconds": round(wall_seconds, 3),
            "seeds_per_second": round(rate, 2),
        }, indent=2))
    else:
        last = results[-1].seed if results else seeds.start
        print(f"{len(results)} runs (seeds {seeds.start}..{last}), {len(failures)} failed, "
              f"{len(report.unknown)} unknown, {wall_seconds:.1f} s, {rate:.1f} seeds/s")
        if failures:
            first = failures[0]
            print(f"first failing seed: {first.seed}")
            if len(failures) > 1:
                print("failing seeds: " + " ".join(str(failure.seed) for failure in failures))
            print(f"replay: {_replay(spec, first, args, bugs, mix)}")
        elif bugs:
            print(f"no run failed with {', '.join(sorted(bugs))} planted")
    if failures and args.shrink:
        plan = harness.plan_run(spec, failures[0].seed, args.nodes, bugs=bugs, mix=mix,
                                chaos_ms=args.chaos_ms, variants=args.variants)
        return _shrink(spec, plan, failures[0], args)
    if failures:
        return EXIT_CHECK_FAILED
    return EXIT_UNKNOWN if report.unknown else EXIT_OK


def _shrink(spec: harness.ProtocolSpec, plan: harness.RunPlan, result: RunResult,
            args: argparse.Namespace) -> int:
    from distlab.sim.shrink import shrink

    if result.ok:
        print(_outcome(result))
        print(f"seed {plan.seed} does not fail: nothing to shrink")
        return _status(result)
    shrunk = shrink(spec, plan)
    if args.json:
        print(json.dumps({
            "seed": plan.seed, "original_faults": len(plan.schedule),
            "faults": [{"at_ms": fault.at_ms, "kind": fault.kind, "what": fault.describe()}
                       for fault in shrunk.schedule],
            "runs": shrunk.runs, "failure": shrunk.result.failure,
        }, indent=2))
    else:
        print(f"seed {plan.seed}: {len(plan.schedule)} fault events shrunk to "
              f"{len(shrunk.schedule)} in {shrunk.runs} runs; still failing with them alone:")
        for fault in shrunk.schedule:
            print(f"  {fault.describe()}")
        print(f"failure: {shrunk.result.failure}")
    return EXIT_CHECK_FAILED


def _replay(spec: harness.ProtocolSpec, result: RunResult, args: argparse.Namespace,
            bugs: frozenset[str], mix: FaultMix) -> str:
    plan = harness.plan_run(spec, result.seed, args.nodes, bugs=bugs, mix=mix,
                            chaos_ms=args.chaos_ms, variants=args.variants)
    return plan.replay_command()


def _status(result: RunResult) -> int:
    if not result.ok:
        return EXIT_CHECK_FAILED
    return EXIT_UNKNOWN if result.unknown else EXIT_OK


def _outcome(result: RunResult) -> str:
    where = f"seed {result.seed} ({result.nodes} nodes, {result.groups} groups)"
    if not result.ok:
        return f"{where}: FAILED: {result.failure}"
    operations = result.operations
    detected = (f", {len(result.detected_faults)} disk faults detected"
                if result.detected_faults else "")
    return (f"{where}: ok, {result.verdict}, {operations['ok']} operations ok, "
            f"{operations['fail']} failed, {operations['info']} indeterminate, "
            f"{result.faults} faults{detected}, {result.virtual_ms:.0f} ms virtual, "
            f"{result.messages} messages")
