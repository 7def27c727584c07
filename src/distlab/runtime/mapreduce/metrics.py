"""The coordinator's Prometheus metrics, read from the scheduler at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from distlab.protocols.mapreduce import Counters


class TaskCounterCollector(Collector):
    """`distlab_mr_tasks_total{kind,state}` and worker/job gauges, read from the scheduler at
    scrape time so they cannot drift from it."""

    def __init__(self, counters: Callable[[], Counters], live_workers: Callable[[], int],
                 jobs_by_state: Callable[[], dict[str, int]]) -> None:
        self._counters = counters
        self._live_workers = live_workers
        self._jobs_by_state = jobs_by_state

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        tasks = CounterMetricFamily(
            "distlab_mr_tasks",
            "MapReduce task events: started, completed, failed, timed_out, worker_lost, "
            "abandoned, lost (map output lost), fetch_failed, backup, duplicate, stale.",
            labels=("kind", "state"),
        )
        for (kind, state), value in sorted(self._counters().by_kind_state.items()):
            tasks.add_metric((kind, state), value)
        yield tasks
        yield GaugeMetricFamily(
            "distlab_mr_workers_alive", "Workers heard from within the worker timeout.",
            value=self._live_workers(),
        )
        jobs = GaugeMetricFamily("distlab_mr_jobs", "Jobs by state.", labels=("state",))
        for state, count in sorted(self._jobs_by_state().items()):
            jobs.add_metric((state,), count)
        yield jobs
