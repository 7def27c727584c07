"""`distlab mr`: MapReduce jobs, their coordinator and workers, and the sequential reference.

    distlab mr run --app wc --input 'DIR/*.txt' --reduces R [--workers W] [--output DIR]
    distlab mr seq --app wc --input 'DIR/*.txt' [--output DIR]    (default ./mr-seq-output)
    distlab mr coordinator [--listen ADDR] [--data-dir DIR] [--metrics ADDR] [--task-timeout S]
    distlab mr worker --coordinator ADDR [--listen ADDR] [--work-dir DIR] [--id ID]
    distlab mr submit --coordinator ADDR --app wc --input ... --reduces R [--wait]
    distlab mr status --coordinator ADDR [--job N]
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from distlab.apps.mr.loader import AppError, canonical_reference, load_app
from distlab.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    UsageError,
    print_table,
)
from distlab.cli.tracing import check_sampler_environment
from distlab.protocols.mapreduce import DEFAULT_SPLIT_BYTES
from distlab.wire.addresses import Address, ConfigError, parse_address

# gRPC, the protobuf messages, the runtime and rich are imported by the handlers that use
# them, not here: `distlab mr run` starts its workers before it imports them (they take
# longer to import than a small job takes to run), and a worker never loads the
# coordinator's modules nor a coordinator the progress display.
if TYPE_CHECKING:
    from distlab.cli.progress import Progress
    from distlab.ops.local_mapreduce import LocalMapReduce
    from distlab.proto import mapreduce_pb2 as pb

DEFAULT_COORDINATOR_LISTEN = "0.0.0.0:7070"
DEFAULT_OUTPUT = "mr-output"
# Its own directory, so that the reference's mr-out-0 never lands among (and replaces the first
# of) a distributed run's files, and `cat mr-output/mr-out-*` counts every key once.
DEFAULT_SEQ_OUTPUT = "mr-seq-output"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mr", help="MapReduce: run jobs, or run a coordinator or worker",
        description="MapReduce as in Dean & Ghemawat (2004): map output stays on the worker "
        "that produced it and reducers fetch it over the network.",
    )
    commands = parser.add_subparsers(dest="mr_command", metavar="COMMAND", required=True)
    _register_run(commands)
    _register_seq(commands)
    _register_coordinator(commands)
    _register_worker(commands)
    _register_submit(commands)
    _register_status(commands)


def _add_job_arguments(parser: argparse.ArgumentParser, reduces: bool = True,
                       default_output: str = DEFAULT_OUTPUT) -> None:
    parser.add_argument("--app", required=True,
                        help="wc, indexer, grep, ..., a dotted module name or a .py file")
    parser.add_argument("--input", required=True, action="append", metavar="GLOB",
                        help="input files (a glob; repeatable)")
    if reduces:
        parser.add_argument("--reduces", type=int, default=10, metavar="R",
                            help="reduce tasks, one output file each (10)")
        parser.add_argument("--split-mb", type=float, default=0, metavar="MB",
                            help="cut larger files into map tasks of about this size "
                            f"(coordinator default {DEFAULT_SPLIT_BYTES // 2**20})")
    parser.add_argument("--output", type=Path, default=Path(default_output), metavar="DIR",
                        help=f"where mr-out-* go (./{default_output})")


def _register_run(commands: Any) -> None:
    parser = commands.add_parser(
        "run", help="run a job on local worker processes (or a running coordinator)",
        description="Start W workers as local processes and serve as their coordinator (in "
        "this process, as `distlab mr coordinator` would), run the job, show progress on "
        "stderr, print where the output is. With --coordinator, submit to that coordinator "
        "instead and follow the job.",
    )
    _add_job_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, metavar="W", help="workers (2)")
    parser.add_argument("--coordinator", metavar="ADDR",
                        help="submit to this coordinator instead of starting processes")
    parser.add_argument("--task-timeout", type=float, default=10.0, metavar="S",
                        help="seconds before a silent task is handed to another worker (10)")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="logs, job log and intermediate files (a temporary directory)")
    parser.add_argument("--otlp-endpoint", default=os.environ.get("OTLP_ENDPOINT"),
                        metavar="URL", help="export spans of every process (OTLP_ENDPOINT)")
    parser.add_argument("--json", action="store_true", help="print the final status as JSON")
    parser.set_defaults(handler=run_job)


def _register_seq(commands: Any) -> None:
    parser = commands.add_parser(
        "seq", help="the sequential reference: same apps, same output format",
        description="Run every map then every reduce in this process, into OUTPUT/mr-out-0 "
        f"(OUTPUT is ./{DEFAULT_SEQ_OUTPUT} unless given, apart from `mr run`'s "
        f"./{DEFAULT_OUTPUT}).",
    )
    _add_job_arguments(parser, reduces=False, default_output=DEFAULT_SEQ_OUTPUT)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run_seq)


def _register_coordinator(commands: Any) -> None:
    parser = commands.add_parser(
        "coordinator", help="run the coordinator (jobs run one at a time, in order)",
        description="Serve the Coordinator service. Flags override the variables named.",
    )
    parser.add_argument("--listen", default=os.environ.get("LISTEN_ADDR",
                                                           DEFAULT_COORDINATOR_LISTEN),
                        help=f"gRPC address (LISTEN_ADDR, {DEFAULT_COORDINATOR_LISTEN})")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("DATA_DIR", "data/mr-coordinator")),
                        help="job log directory (DATA_DIR, ./data/mr-coordinator)")
    parser.add_argument("--metrics", default=os.environ.get("METRICS_ADDR"),
                        help="Prometheus address (METRICS_ADDR; none when unset)")
    parser.add_argument("--task-timeout", type=float,
                        default=float(os.environ.get("MR_TASK_TIMEOUT", "10")),
                        help="seconds before an unreported task is reassigned (MR_TASK_TIMEOUT, "
                        "10)")
    parser.add_argument("--worker-timeout", type=float, default=3.0,
                        help="seconds of heartbeat silence before a worker is dead and its "
                        "map output re-executed (3)")
    parser.add_argument("--no-backup-tasks", dest="backup_tasks", action="store_false",
                        help="never start backup copies of the last tasks of a phase")
    parser.add_argument("--backup-after", type=float, default=1.0, metavar="S",
                        help="a task must run this long before it gets a backup copy (1)")
    parser.add_argument("--split-mb", type=float, default=DEFAULT_SPLIT_BYTES / 2**20,
                        help="default split size for large inputs, MB "
                        f"({DEFAULT_SPLIT_BYTES // 2**20})")
    parser.add_argument("--exit-when-idle", action="store_true",
                        help="tell workers to exit, and exit, once every submitted job is over")
    parser.add_argument("--otlp-endpoint", default=os.environ.get("OTLP_ENDPOINT"),
                        help="OTLP gRPC endpoint for spans (OTLP_ENDPOINT)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.set_defaults(handler=run_coordinator)


def _register_worker(commands: Any) -> None:
    parser = commands.add_parser(
        "worker", help="run a worker",
        description="Ask the coordinator for tasks and run them; serve map output to reducers.",
    )
    parser.add_argument("--coordinator", default=os.environ.get("MR_COORDINATOR"),
                        help="coordinator address (MR_COORDINATOR)")
    parser.add_argument("--listen", default=os.environ.get("LISTEN_ADDR", "0.0.0.0:0"),
                        help="FetchPartition address; port 0 picks a free one (LISTEN_ADDR)")
    parser.add_argument("--advertise-host", default=os.environ.get("MR_ADVERTISE_HOST"),
                        help="host reducers reach this worker at (the listen host, or the "
                        "hostname when listening on all interfaces)")
    parser.add_argument("--id", default=os.environ.get("MR_WORKER_ID"),
                        help="worker id (MR_WORKER_ID; hostname-pid by default)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="local intermediate files (./mr-work/<id>)")
    parser.add_argument("--give-up-after", type=float, default=10.0, metavar="S",
                        help="exit when the coordinator is unreachable this long (10)")
    parser.add_argument("--otlp-endpoint", default=os.environ.get("OTLP_ENDPOINT"),
                        help="OTLP gRPC endpoint for spans (OTLP_ENDPOINT)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.set_defaults(handler=run_worker)


def _register_submit(commands: Any) -> None:
    parser = commands.add_parser("submit", help="submit a job to a running coordinator")
    parser.add_argument("--coordinator", default=os.environ.get("MR_COORDINATOR"),
                        help="coordinator address (MR_COORDINATOR)")
    _add_job_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_submit)


def _register_status(commands: Any) -> None:
    parser = commands.add_parser("status", help="a job's progress")
    parser.add_argument("--coordinator", default=os.environ.get("MR_COORDINATOR"),
                        help="coordinator address (MR_COORDINATOR)")
    parser.add_argument("--job", type=int, default=0, help="job id (the latest)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_status)


# ---- shared helpers


def resolve_inputs(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            raise UsageError(f"no input file matches {pattern!r}")
        paths.extend(Path(match).resolve() for match in matches if Path(match).is_file())
    if not paths:
        raise UsageError("the inputs name no regular file")
    return paths


def check_app(reference: str) -> str:
    try:
        load_app(reference)
    except AppError as error:
        raise UsageError(str(error)) from error
    return canonical_reference(reference)


def check_reduces(args: argparse.Namespace) -> None:
    if args.reduces < 1:
        raise UsageError(f"--reduces must be at least 1, got {args.reduces}")


def job_spec(args: argparse.Namespace, app: str, inputs: list[Path] | None = None
             ) -> pb.JobSpec:
    """The job the arguments describe; `inputs` when they are resolved already."""
    check_reduces(args)
    if inputs is None:
        inputs = resolve_inputs(args.input)
    from distlab.proto import mapreduce_pb2 as pb

    return pb.JobSpec(
        app=app, inputs=[str(path) for path in inputs],
        reduces=args.reduces, output_dir=str(args.output.resolve()),
        split_bytes=int(args.split_mb * 2**20),
    )


def coordinator_address(text: str | None) -> Address:
    if not text:
        raise UsageError("no coordinator: pass --coordinator ADDR or set MR_COORDINATOR")
    try:
        return parse_address(text, "--coordinator")
    except ConfigError as error:
        raise UsageError(str(error)) from error


def progress_dict(progress: pb.JobProgress) -> dict[str, Any]:
    from distlab.runtime.mapreduce.convert import STATE_NAMES

    return {
        "job_id": progress.job_id, "app": progress.app, "state": STATE_NAMES[progress.state],
        "maps_done": progress.maps_done, "maps_total": progress.maps_total,
        "reduces_done": progress.reduces_done, "reduces_total": progress.reduces_total,
        "input_bytes": progress.input_bytes, "map_bytes_done": progress.map_bytes_done,
        "elapsed_seconds": round(progress.elapsed_seconds, 3),
        "output_dir": progress.output_dir, "error": progress.error,
        "maps_reexecuted": progress.maps_reexecuted, "map_attempts": progress.map_attempts,
        "reduce_attempts": progress.reduce_attempts,
        "backup_attempts": progress.backup_attempts,
    }


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def describe_progress(progress: pb.JobProgress) -> str:
    """`job 1 mapping: map 3/8 (1.2 MB/3.3 MB), reduce 0/3, 2.0s ETA 3s`."""
    from distlab.runtime.mapreduce.convert import STATE_NAMES

    total = progress.maps_total + progress.reduces_total
    fraction = (progress.maps_done + progress.reduces_done) / total if total else 0.0
    eta = ""
    if 0 < fraction < 1:
        eta = f" ETA {progress.elapsed_seconds * (1 - fraction) / fraction:.0f}s"
    return (
        f"job {progress.job_id} {STATE_NAMES[progress.state]}: "
        f"map {progress.maps_done}/{progress.maps_total} "
        f"({_megabytes(progress.map_bytes_done)}/{_megabytes(progress.input_bytes)}), "
        f"reduce {progress.reduces_done}/{progress.reduces_total}, "
        f"{progress.elapsed_seconds:.1f}s{eta}"
    )


class JobDisplay:
    """A job's progress snapshots shown through `Progress`: tasks done of all tasks on the
    bar, and each change of phase (queued, mapping, reducing, done) as a line of its own."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._state = -1

    def __call__(self, snapshot: pb.JobProgress) -> None:
        text = describe_progress(snapshot)
        if snapshot.state != self._state:
            self._state = snapshot.state
            self._progress.log(text)
        total = snapshot.maps_total + snapshot.reduces_total
        self._progress.update(snapshot.maps_done + snapshot.reduces_done,
                              total=total or None, status=text)


def report_result(progress: pb.JobProgress, as_json: bool) -> int:
    from distlab.proto import mapreduce_pb2 as pb
    from distlab.runtime.mapreduce.convert import STATE_NAMES

    if as_json:
        print(json.dumps(progress_dict(progress), indent=2))
    elif progress.state == pb.JOB_STATE_DONE:
        print(f"job {progress.job_id} done in {progress.elapsed_seconds:.1f} s: "
              f"{progress.reduces_total} files {progress.output_dir}/mr-out-*")
        if progress.maps_reexecuted or progress.backup_attempts:
            print(f"  {progress.maps_reexecuted} map tasks re-executed, "
                  f"{progress.backup_attempts} backup copies")
    else:
        print(f"job {progress.job_id} {STATE_NAMES[progress.state]}: {progress.error}")
    return EXIT_OK if progress.state == pb.JOB_STATE_DONE else EXIT_CHECK_FAILED


# ---- handlers


def run_seq(args: argparse.Namespace) -> int:
    from distlab.runtime.mapreduce.sequential import run_sequential

    app = load_checked(args.app)
    inputs = resolve_inputs(args.input)
    started = time.monotonic()
    result = run_sequential(app, inputs, args.output.resolve())
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"output": str(result.output), "input_bytes": result.input_bytes,
                          "keys": result.keys, "elapsed_seconds": round(elapsed, 3)}))
    else:
        print(f"{result.keys} keys from {_megabytes(result.input_bytes)} in {elapsed:.1f} s: "
              f"{result.output}")
    return EXIT_OK


def load_checked(reference: str) -> Any:
    try:
        return load_app(reference)
    except AppError as error:
        raise UsageError(str(error)) from error


def run_job(args: argparse.Namespace) -> int:
    app = check_app(args.app)
    inputs = resolve_inputs(args.input)
    check_reduces(args)
    if args.coordinator:
        from distlab.runtime import loop

        spec = job_spec(args, app, inputs)
        return loop.run(submit_and_follow(coordinator_address(args.coordinator), spec, args.json,
                                          wait=True))
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers must be between 1 and 64, got {args.workers}")
    from distlab.ops.local_mapreduce import LocalMapReduce
    check_sampler_environment()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="distlab-mr-"))
    local = LocalMapReduce(run_dir.resolve(), args.workers, args.task_timeout,
                           args.otlp_endpoint)
    try:
        with local.running():
            # The workers start up while this process imports the coordinator.
            from distlab.runtime import loop

            print(f"coordinator {local.address}, {args.workers} workers, logs in {run_dir}",
                  file=sys.stderr)
            _configure_logging("INFO", "mr-coordinator", local.coordinator_log)
            status = loop.run(run_local(local, job_spec(args, app, inputs), args.json))
            local.wait_for_exit(timeout=5.0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    # Every process it started is gone and the result is printed.
    exit_at_once(status)


async def run_local(local: LocalMapReduce, spec: pb.JobSpec, as_json: bool) -> int:
    """Serve the run's coordinator, submit the job to it and follow the job to its end; return
    once the coordinator has stopped (it does once it has told every worker to exit)."""
    import asyncio

    from distlab.runtime.mapreduce.coordinator import serve_coordinator
    from distlab.runtime.mapreduce.joblog import JobLogCorrupt

    stop = asyncio.Event()
    coordinator = asyncio.create_task(serve_coordinator(local.coordinator_settings(), stop))
    following = asyncio.create_task(submit_and_follow(local.address, spec, as_json,
                                                      wait=True, local=local))
    job_ended = False
    try:
        await asyncio.wait({coordinator, following}, return_when=asyncio.FIRST_COMPLETED)
        if not following.done():
            # The coordinator stopped before the job did: it could not start.
            following.cancel()
            try:
                coordinator.result()
            except (ConfigError, JobLogCorrupt) as error:
                print(f"distlab mr: error: coordinator: {error}", file=sys.stderr)
                return EXIT_USAGE
            return EXIT_UNKNOWN
        status = following.result()
        job_ended = status in (EXIT_OK, EXIT_CHECK_FAILED)
    finally:
        # A job that ended (done or failed) lets the coordinator stop by itself once the
        # workers know; otherwise (refused, interrupted, coordinator gone) it is stopped.
        if not job_ended:
            stop.set()
        if not coordinator.done():
            await coordinator
    return status


async def submit_and_follow(address: Address, spec: pb.JobSpec, as_json: bool, wait: bool,
                            local: LocalMapReduce | None = None) -> int:
    import grpc

    from distlab.cli.progress import Progress
    from distlab.runtime.mapreduce.client import (
        CoordinatorGone,
        JobRejected,
        follow_to_end,
        submit_job,
    )

    try:
        submitted = await submit_job(address, spec)
    except JobRejected as error:
        raise UsageError(str(error)) from error
    except grpc.aio.AioRpcError as error:
        where = f" (log: {local.coordinator_log})" if local else ""
        print(f"distlab mr: error: coordinator {address}: {error.code().name}{where}",
              file=sys.stderr)
        return EXIT_UNKNOWN
    if not wait:
        if as_json:
            print(json.dumps({"job_id": submitted.job_id,
                              "queued_behind": submitted.queued_behind}))
        else:
            print(f"job {submitted.job_id} submitted ({submitted.queued_behind} ahead)")
        return EXIT_OK
    with Progress(f"job {submitted.job_id}", json=as_json) as progress:
        try:
            final = await follow_to_end(address, submitted.job_id, JobDisplay(progress))
        except CoordinatorGone as error:
            progress.close()
            print(f"distlab mr: error: {error}", file=sys.stderr)
            return EXIT_UNKNOWN
    return report_result(final, as_json)


def run_submit(args: argparse.Namespace) -> int:
    address = coordinator_address(args.coordinator)
    spec = job_spec(args, canonical_reference(args.app))
    from distlab.runtime import loop

    return loop.run(submit_and_follow(address, spec, args.json, wait=args.wait))


def run_status(args: argparse.Namespace) -> int:
    import grpc

    from distlab.runtime import loop
    from distlab.runtime.mapreduce.client import job_status

    address = coordinator_address(args.coordinator)
    try:
        progress = loop.run(job_status(address, args.job))
    except grpc.aio.AioRpcError as error:
        print(f"distlab mr: error: {error.code().name}: {error.details()}", file=sys.stderr)
        return EXIT_CHECK_FAILED if error.code() == grpc.StatusCode.NOT_FOUND else EXIT_UNKNOWN
    if args.json:
        print(json.dumps(progress_dict(progress), indent=2))
    else:
        row = progress_dict(progress)
        columns = ("job_id", "app", "state", "maps_done", "maps_total", "reduces_done",
                   "reduces_total", "maps_reexecuted", "elapsed_seconds")
        print_table(columns, [[row[column] for column in columns]])
        if progress.error:
            print(f"error: {progress.error}")
    return EXIT_OK


def _configure_logging(level: str, name: str, filename: Path | None = None) -> None:
    logging.basicConfig(level=level, filename=filename,
                        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")


def _parse(text: str, what: str) -> Address:
    try:
        return parse_address(text, what)
    except ConfigError as error:
        raise UsageError(str(error)) from error


def run_coordinator(args: argparse.Namespace) -> int:
    from distlab.protocols.mapreduce import SchedulerConfig
    from distlab.runtime import loop
    from distlab.runtime.mapreduce.coordinator import CoordinatorSettings, serve_coordinator
    from distlab.runtime.mapreduce.joblog import JobLogCorrupt
    from distlab.runtime.server import run_until_signalled
    check_sampler_environment()
    if args.task_timeout <= 0 or args.worker_timeout <= 0:
        raise UsageError("--task-timeout and --worker-timeout must be positive")
    if args.split_mb <= 0:
        raise UsageError("--split-mb must be positive")
    settings = CoordinatorSettings(
        listen=_parse(args.listen, "--listen"),
        data_dir=args.data_dir,
        metrics=_parse(args.metrics, "--metrics") if args.metrics else None,
        scheduler=SchedulerConfig(
            task_timeout=args.task_timeout,
            worker_timeout=args.worker_timeout,
            heartbeat_interval=min(0.5, args.worker_timeout / 4),
            backup_tasks=args.backup_tasks,
            backup_after=args.backup_after,
            exit_when_idle=args.exit_when_idle,
        ),
        split_bytes=int(args.split_mb * 2**20),
        otlp_endpoint=(args.otlp_endpoint or "").strip() or None,
    )
    _configure_logging(args.log_level, "mr-coordinator")
    try:
        loop.run(run_until_signalled(lambda stop: serve_coordinator(settings, stop)))
    except (ConfigError, JobLogCorrupt) as error:
        print(f"distlab mr coordinator: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    exit_at_once(EXIT_OK)


def run_worker(args: argparse.Namespace) -> int:
    from distlab.runtime import loop
    from distlab.runtime.mapreduce.worker import (
        CoordinatorUnreachable,
        WorkerSettings,
        serve_worker,
    )
    from distlab.runtime.server import run_until_signalled
    check_sampler_environment()
    coordinator = coordinator_address(args.coordinator)
    worker_id = args.id or f"{socket.gethostname()}-{os.getpid()}"
    if not worker_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UsageError(f"--id may hold letters, digits, '-', '_' and '.', got {worker_id!r}")
    settings = WorkerSettings(
        worker_id=worker_id,
        coordinator=coordinator,
        listen=_parse(args.listen, "--listen") if not args.listen.endswith(":0")
        else _wildcard_port(args.listen),
        work_dir=args.work_dir or Path("mr-work") / worker_id,
        advertise_host=args.advertise_host,
        give_up_after=args.give_up_after,
        otlp_endpoint=(args.otlp_endpoint or "").strip() or None,
    )
    _configure_logging(args.log_level, f"mr-worker-{worker_id}")
    try:
        loop.run(run_until_signalled(lambda stop: serve_worker(settings, stop)))
    except ConfigError as error:
        print(f"distlab mr worker: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CoordinatorUnreachable as error:
        logging.getLogger(__name__).warning("giving up: %s", error)
        return EXIT_UNKNOWN
    # Also what ends a worker whose abandoned task is still computing (serve_worker says so):
    # application code cannot be interrupted, and the interpreter would wait for its thread.
    exit_at_once(EXIT_OK)


def exit_at_once(status: int) -> NoReturn:
    """End a process of `distlab mr` whose work and shutdown are complete without the
    interpreter's own teardown. Everything worth keeping is on disk by then (the job log is
    fsynced as it is written, reduce output before it is renamed, spans flushed when the
    server stopped); the teardown would only free the job's data and grpc's state, which
    takes a good part of a second on a busy machine, and the user of `distlab mr run` waits
    for it (and for its coordinator's and workers')."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _wildcard_port(text: str) -> Address:
    """`host:0`: parse_address rejects port 0, which here means "any free port"."""
    host = text.rpartition(":")[0].strip("[]")
    if not host:
        raise UsageError(f"--listen: expected host:port, got {text!r}")
    return Address(host, 0)
