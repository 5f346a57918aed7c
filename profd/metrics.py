"""The process's Prometheus metrics, defined in one place and served at ``/metrics``.

A leaf module: every part of the flow counts here without importing the others.

`profd serve` runs the pipeline worker in a child process, so metrics use
prometheus-client's multiprocess mode: `share_between_processes` points every process at
one directory of value files (the child inherits it through the environment) and
`exposition` merges them.  For that the metric objects are made on first use, after the
mode is set, never at import.  Without it (`profd process`, tests) they are plain
in-process metrics.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector

_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def share_between_processes(directory: Path) -> None:
    """Keep this process's metrics in `directory`, as will every child it starts.

    Call before any metric is used; stale files of an earlier run are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[_MULTIPROCESS] = str(directory)
    values.ValueClass = values.get_value_class()


def process_gone(pid: int) -> None:
    """A child that exited: its live gauges no longer count (its counters still do)."""
    if _MULTIPROCESS in os.environ:
        multiprocess.mark_process_dead(pid)


def exposition(*extra: Collector) -> tuple[bytes, str]:
    """The text format, every process's metrics merged, plus `extra` collectors (values
    read at scrape time, such as the queue's depth)."""
    if _MULTIPROCESS in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    for collector in extra:
        registry.register(collector)
    try:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    finally:
        if registry is REGISTRY:
            for collector in extra:
                registry.unregister(collector)


class _Metrics:
    @cached_property
    def envelopes(self) -> Counter:
        return Counter("profd_envelopes", "Envelopes answered, by HTTP status", ["status"])

    @cached_property
    def profile_items(self) -> Counter:
        # Items of envelopes answered 200 or 429: ingest has taken responsibility for each,
        # so each ends as exactly one outcome in its primary category (profile, or
        # profile_chunk / profile_chunk_ui).  received = accepted + invalid + filtered +
        # rate limited is checked against this.
        return Counter(
            "profd_ingest_profile_items", "Profile items in envelopes answered 200 or 429", ["item_type"]
        )

    @cached_property
    def outcomes(self) -> Counter:
        return Counter(
            "profd_outcomes", "Outcomes recorded, as Sentry counts them", ["outcome", "category", "reason"]
        )

    @cached_property
    def stage_seconds(self) -> Histogram:
        return Histogram(
            "profd_stage_seconds",
            "Time spent in each stage of process_profile_task",
            ["stage"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    @cached_property
    def retries(self) -> Counter:
        return Counter("profd_worker_retries", "Messages retried because a backend was down", ["backend"])

    @cached_property
    def dead_letters(self) -> Counter:
        return Counter("profd_worker_dead_letters", "Messages moved to the dead-letter topic", ["backend"])

    @cached_property
    def backend_errors(self) -> Counter:
        return Counter(
            "profd_backend_errors", "Calls to a backend that failed as unavailable", ["backend", "where"]
        )

    @cached_property
    def symbol_cache(self) -> Counter:
        return Counter(
            "profd_symbolication_cache", "Symbol cache lookups (symcaches, source maps)", ["kind", "result"]
        )


METRICS = _Metrics()
