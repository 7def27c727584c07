"""What the processes of a MapReduce job import at start-up: only what they use, since a
small job takes less time to run than the unused modules would take to load."""

from __future__ import annotations

import subprocess
import sys

import pytest

UNUSED_BY_A_WORKER = ("opentelemetry.instrumentation", "opentelemetry.sdk", "prometheus_client",
                      "rich", "importlib.metadata", "distlab.runtime.mapreduce.coordinator")


def modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=60)
    return set(result.stdout.split())


def loaded(modules: set[str], prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in modules)


@pytest.mark.parametrize("unused", UNUSED_BY_A_WORKER)
def test_a_worker_that_exports_no_spans_loads_only_what_it_uses(unused: str) -> None:
    modules = modules_after(
        "from distlab.cli.main import build_parser\n"
        "build_parser('mr')\n"
        "import distlab.runtime.mapreduce.worker, distlab.apps.mr.wc\n"
        "from distlab.telemetry.tracing import setup_tracing\n"
        "setup_tracing('mr-worker-1', None).tracer('t').start_span('s').end()\n"
    )
    assert "grpc" in modules
    assert not loaded(modules, unused)


def test_mr_run_starts_its_workers_before_it_imports_grpc() -> None:
    modules = modules_after(
        "from distlab.cli.main import build_parser\n"
        "build_parser('mr')\n"
        "import distlab.ops.local_mapreduce\n"
    )
    assert "distlab.ops.local_mapreduce" in modules
    assert not loaded(modules, "grpc")
