"""Operations: ``/health/live``, ``/health/ready`` and ``/metrics``.

Live: the process answers.  Ready: every backend answers, the worker is alive, and the
queue's lag is under `ready_max_lag`; a load balancer stops sending to an instance that is
not ready, and its answer says which check failed.  Metrics: Prometheus's text format, with
the worker's process merged in (see profd.metrics) and the queue read at scrape time.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from profd.bus.dead_letters import REDRIVE_GROUP
from profd.bus.worker import CONSUMER_GROUP, DEAD_LETTER_TOPIC
from profd.errors import BackendUnavailable
from profd.formats.message import TOPIC
from profd.metrics import exposition
from profd.services import Services
from profd.supervisor import Supervised


class QueueCollector(Collector):
    """The queue's depth and the dead letters waiting, read when scraped."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        try:
            depth = self.services.queue.pending(TOPIC, CONSUMER_GROUP)
            # The re-drive group's lag: cheap on every bus (reading the letters themselves
            # would join a Kafka consumer group on every scrape).
            letters = self.services.queue.pending(DEAD_LETTER_TOPIC, REDRIVE_GROUP)
        except BackendUnavailable:
            return
        yield GaugeMetricFamily("profd_queue_depth", "Messages the workers have not committed", value=depth)
        yield GaugeMetricFamily("profd_dead_letters_waiting", "Dead letters not yet re-driven", value=letters)


def health_routes(services: Services, worker: Supervised | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> Response:
        checks = await run_in_threadpool(readiness, services, worker)
        ok = all(state == "ok" for state in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        body, content_type = await run_in_threadpool(exposition, QueueCollector(services))
        return Response(body, media_type=content_type)

    return router


def readiness(services: Services, worker: Supervised | None) -> dict[str, str]:
    """Each check's state: "ok", or what is wrong."""
    checks: dict[str, str] = {}

    def probe(name: str, check: Callable[[], object]) -> None:
        try:
            check()
            checks[name] = "ok"
        except BackendUnavailable as e:
            checks[name] = e.detail

    probe("directory", services.directory.check)
    probe("index", services.index.check)
    probe("reads", services.reads.check)
    probe("blobs", services.blobs.check)
    try:
        lag = services.queue.pending(TOPIC, CONSUMER_GROUP)
        limit = services.settings.ready_max_lag
        checks["queue"] = "ok" if lag <= limit else f"{lag} messages waiting, more than {limit}"
    except BackendUnavailable as e:
        checks["queue"] = e.detail
    free = shutil.disk_usage(services.settings.data_dir).free
    needed = services.settings.min_free_disk
    checks["disk"] = (
        "ok" if free >= needed else f"{free // 1024} KiB free in the data directory, below {needed // 1024}"
    )
    if worker is not None:
        checks["worker"] = "ok" if worker.alive() else f"down (restarted {worker.restarts} times)"
    return checks
