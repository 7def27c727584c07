"""What tracing costs: KV writes and a MapReduce job with tracing off, on at 10% and at 100%.

Every configuration is measured in the same run, its passes interleaved (off, 10%, 100%, then
again in a rotated order), each KV pass on a fresh `distlab up`-style cluster of 3 nodes
(`distlab.ops.local_cluster`), loaded by `distlab bench kv` (64 clients, then 1; 100-byte
values, one load process). "on" means every process (nodes, the load client, the MapReduce
coordinator and workers) exports over OTLP to a receiver in this process
(`distlab.telemetry.receiver`, standing in for a collector, on the same cores):

- off: no OTLP_ENDPOINT, so no interceptors and no recorded spans;
- 100%: OTLP_ENDPOINT set, the default sampler (parentbased_always_on);
- 10%: OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1.

A KV operation's trace starts at the load client, whose sampler decides; the nodes' parent-based
samplers follow the decision carried in `traceparent`. The table checks that from the spans
received: the share of client operations whose trace arrived, and the node KV spans that
arrived outside any client-started trace (0 when the client decides). A MapReduce job's trace
starts at the coordinator's job span, so at 10% most jobs are not sampled at all; the table
says how many were.

The MapReduce job is `distlab mr run --app wc` over copies of tests/data/mapreduce (the input
bench/mr_wordcount.py generates); its time is the coordinator's, submission to last reduce.
"node CPU ms/write" is the three nodes' CPU time during the 64-client load over the writes
acknowledged, "client CPU ms/write" the load process's over its measured window: on a shared
machine they move much less with the other load than throughput does (though a node's CPU per
write also grows when fewer writes share each batch and fsync).
Ratios are each configuration's median over off's median; medians of --runs passes.

Run: .venv/bin/python bench/tracing_cost.py [--duration S] [--runs N] [--megabytes M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mr_wordcount import generate_input, output_counts, run_distributed

from distlab.cli.common import format_table
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import wait_for_leader
from distlab.telemetry.receiver import OtlpReceiver, ReceivedSpan
from distlab.telemetry.tracing import CLIENT_SERVICE_NAME

VALUE_SIZE = 100
KEYS = 1000
CLIENT_COUNTS = (64, 1)
TRACING_VARIABLES = ("OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    exporting: bool
    sampler: dict[str, str]

    def environment(self, endpoint: str) -> dict[str, str]:
        """This process's environment with the tracing variables of this setting only."""
        env = {k: v for k, v in os.environ.items() if k not in TRACING_VARIABLES}
        if self.exporting:
            env["OTLP_ENDPOINT"] = endpoint
        return {**env, **self.sampler}


SETTINGS = (
    Setting("off", exporting=False, sampler={}),
    Setting("10%", exporting=True, sampler={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                            "OTEL_TRACES_SAMPLER_ARG": "0.1"}),
    Setting("100%", exporting=True, sampler={}),
)


@dataclass(slots=True)
class Measured:
    """Every pass's figures of one setting."""

    writes_per_second: list[float] = field(default_factory=list)
    node_cpu_ms: list[float] = field(default_factory=list)
    client_cpu_ms: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    job_seconds: list[float] = field(default_factory=list)
    kept: list[float] = field(default_factory=list)
    orphans: int = 0
    jobs_sampled: int = 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes `pids` have used so far."""
    ticks = 0
    for pid in pids:
        # /proc/PID/stat: fields 14 and 15 (utime, stime), counted after the ")" that ends
        # the command name, which may itself hold spaces.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def bench_kv(cluster_dir: Path, env: dict[str, str], duration: float
                   ) -> tuple[dict[int, dict[str, Any]], int, float]:
    """On a fresh 3-node cluster started in `env`: `distlab bench kv` summaries by client
    count, the number of operations the load client ran (warm-ups included), and the nodes'
    CPU seconds during the 64-client load."""
    node_env = {variable: env.get(variable, "") for variable in TRACING_VARIABLES}
    cluster = LocalCluster.plan(3, cluster_dir, node_env)
    await cluster.start()
    pids = [node.pid for node in cluster.nodes.values() if node.pid is not None]
    summaries: dict[int, dict[str, Any]] = {}
    operations = 0
    node_cpu = 0.0
    try:
        cluster_file = cluster.write_description()
        await wait_for_leader(cluster.addresses, 30)
        for clients in CLIENT_COUNTS:
            cpu_before = cpu_seconds(pids)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "distlab", "bench", "kv", "--cluster-file",
                str(cluster_file), "--clients", str(clients), "--duration", str(duration),
                "--value-size", str(VALUE_SIZE), "--keys", str(KEYS), "--json",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            stdout, stderr = await process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"distlab bench kv failed ({process.returncode}): "
                                 f"{stderr.decode().strip()}")
            if clients == CLIENT_COUNTS[0]:
                node_cpu = cpu_seconds(pids) - cpu_before
            summary = summaries[clients] = json.loads(stdout)
            # One warm-up write per client (one group), then the measured operations.
            operations += clients + summary["ops"] + summary["definite_failures"] + \
                summary["indefinite_failures"]
    finally:
        await cluster.stop()
    return summaries, operations, node_cpu


def client_traces(spans: list[ReceivedSpan]) -> set[bytes]:
    """Trace ids of the KV operations the load client started."""
    return {s.trace_id for s in spans
            if s.service == CLIENT_SERVICE_NAME and not s.parent_span_id
            and s.name.startswith("kv ")}


def orphan_kv_spans(spans: list[ReceivedSpan], started: set[bytes]) -> int:
    """Nodes' KV server spans in a trace no client operation started: a node that sampled on
    its own instead of following the client."""
    return sum(1 for s in spans if s.service.startswith("node-")
               and s.name.startswith("/distlab.v1.KV/") and s.trace_id not in started)


def mapreduce_job(root: Path, output: Path, name: str, args: argparse.Namespace,
                  env: dict[str, str]) -> float:
    """The job seconds of one word count; a run that fails is said, its logs kept in
    `--keep-failed`, and run once more (a second failure ends the benchmark)."""
    for attempt in range(2):
        run_dir = root / f"mr-{name}-{attempt}"
        try:
            job, _, _ = run_distributed(root / "in", output, run_dir, args.workers,
                                        args.reduces, env)
            return job
        except SystemExit as failure:
            kept = args.keep_failed / run_dir.name
            shutil.copytree(run_dir, kept, ignore=shutil.ignore_patterns("*.txt", "mr-*"),
                            dirs_exist_ok=True)
            print(f"  word count {name} failed, logs in {kept}: "
                  f"{str(failure).strip().splitlines()[-1]}", flush=True)
            if attempt:
                raise
            shutil.rmtree(output, ignore_errors=True)
    raise AssertionError("unreachable")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of each KV load (5)")
    parser.add_argument("--runs", type=int, default=3, help="passes of every setting (3)")
    parser.add_argument("--megabytes", type=int, default=32, help="word count input, MB (32)")
    parser.add_argument("--workers", type=int, default=2, help="MapReduce workers (2)")
    parser.add_argument("--reduces", type=int, default=2, help="reduce tasks (2)")
    parser.add_argument("--keep-failed", type=Path, default=Path("mr-bench-failures"),
                        help="where the logs of a failed word count are kept")
    args = parser.parse_args()

    receiver = OtlpReceiver()
    measured = {setting.name: Measured() for setting in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="distlab-tracing-bench-") as scratch:
        root = Path(scratch)
        (root / "in").mkdir()
        inputs = generate_input(root / "in", args.megabytes)
        megabytes = sum(path.stat().st_size for path in inputs) / 1e6
        reference: dict[str, int] | None = None
        for run in range(args.runs):
            # A rotated order each pass, so no setting always runs first (or last).
            order = SETTINGS[run % len(SETTINGS):] + SETTINGS[:run % len(SETTINGS)]
            for setting in order:
                print(f"  pass {run + 1}/{args.runs}: {setting.name}", flush=True)
                env = setting.environment(receiver.endpoint)
                figures = measured[setting.name]
                receiver.take()
                summaries, operations, node_cpu = asyncio.run(
                    bench_kv(root / f"kv-{run}-{setting.name}", env, args.duration))
                figures.writes_per_second.append(summaries[64]["ops_per_second"])
                figures.node_cpu_ms.append(node_cpu * 1000 / summaries[64]["ops"])
                figures.client_cpu_ms.append(
                    summaries[64]["client_cpu_seconds"] * 1000 / summaries[64]["ops"])
                figures.p50_ms.append(summaries[1]["latency_ms"]["p50"])
                spans = receiver.take()
                started = client_traces(spans)
                figures.kept.append(len(started) / operations)
                figures.orphans += orphan_kv_spans(spans, started)

                output = root / f"out-{run}-{setting.name}"
                job = mapreduce_job(root, output, f"{run}-{setting.name}", args, env)
                counts = output_counts(output)
                reference = reference or counts
                if counts != reference:
                    raise SystemExit(f"{setting.name}: the word count differs from off's")
                figures.job_seconds.append(job)
                figures.jobs_sampled += any(s.name == "mr.job" for s in receiver.take())
    receiver.stop()

    base = measured["off"]

    def ratio(values: list[float], baseline: list[float]) -> str:
        return f"{statistics.median(values) / statistics.median(baseline):.3f}"

    print(f"\n3 nodes on loopback, {VALUE_SIZE}-byte writes, {args.duration:g} s per load; "
          f"word count over {megabytes:.0f} MB, {args.workers} workers; "
          f"median of {args.runs} interleaved passes")
    rows = []
    for setting in SETTINGS:
        figures = measured[setting.name]
        rows.append([
            setting.name,
            f"{statistics.median(figures.writes_per_second):.0f}",
            ratio(figures.writes_per_second, base.writes_per_second),
            f"{statistics.median(figures.node_cpu_ms):.2f}",
            ratio(figures.node_cpu_ms, base.node_cpu_ms),
            f"{statistics.median(figures.client_cpu_ms):.2f}",
            ratio(figures.client_cpu_ms, base.client_cpu_ms),
            f"{statistics.median(figures.p50_ms):.2f}",
            ratio(figures.p50_ms, base.p50_ms),
            f"{statistics.median(figures.job_seconds):.2f}",
            ratio(figures.job_seconds, base.job_seconds),
            f"{statistics.median(figures.kept):.3f}",
            figures.orphans,
            f"{figures.jobs_sampled}/{args.runs}",
        ])
    print(format_table(
        ("tracing", "64-client writes/s", "x off", "node CPU ms/write", "x off",
         "client CPU ms/write", "x off",
         "1-client p50 ms", "x off", "MR job s",
         "x off", "KV traces kept", "node-rooted KV spans", "MR jobs traced"),
        rows))
    print("\nevery pass (writes/s; node CPU ms/write; p50 ms; job s):")
    for setting in SETTINGS:
        figures = measured[setting.name]
        print(f"  {setting.name:>4}: "
              + " ".join(f"{v:.0f}" for v in figures.writes_per_second) + "; "
              + " ".join(f"{v:.2f}" for v in figures.node_cpu_ms) + "; "
              + " ".join(f"{v:.2f}" for v in figures.p50_ms) + "; "
              + " ".join(f"{v:.2f}" for v in figures.job_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
