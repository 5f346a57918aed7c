"""The pipeline worker, wired: the bus's `Worker` running `process_profile_task`.

The one place that knows both the bus and the pipeline, so neither imports the other;
`profd worker` and `profd serve --worker thread` start what this builds.
"""

from __future__ import annotations

import logging

from arroyo.commit import CommitPolicy

from profd.bus.worker import CONSUMER_GROUP, Retries, Worker
from profd.formats.message import Headers, sampled_from_headers
from profd.logs import handling
from profd.metrics import METRICS
from profd.pipeline.task import process_profile_task
from profd.services import Services

log = logging.getLogger(__name__)


def pipeline_worker(services: Services) -> Worker:
    context = services.task_context()
    settings = services.settings

    def handle(value: bytes, headers: Headers, message_id: str) -> None:
        # Logged under the id of the request that brought the message, else its bus identity.
        traced = next((v.decode(errors="replace") for n, v in headers if n == "request_id"), None)
        with handling(traced or message_id):
            task = process_profile_task(
                value, sampled_from_headers(headers), context=context, message_id=message_id
            )
            first = task.outcomes[0] if task.outcomes else None
            log.info(
                "message %s, profile %s: %s",
                message_id,
                task.event_id,
                f"{first.outcome.name.lower()} {first.reason or ''}".strip() if first else "not processed",
            )

    return Worker(
        services.queue.consumer(CONSUMER_GROUP),
        handle,
        dead_letters=services.queue,
        retries=Retries(settings.worker_max_attempts, settings.worker_retry_backoff),
        on_retry=retried,
        on_dead_letter=dead_lettered,
        commit_policy=CommitPolicy(settings.worker_commit_seconds, settings.worker_commit_messages),
    )


def retried(backend: str) -> None:
    METRICS.retries.labels(backend).inc()
    METRICS.backend_errors.labels(backend, "worker").inc()


def dead_lettered(backend: str) -> None:
    METRICS.dead_letters.labels(backend).inc()
    METRICS.backend_errors.labels(backend, "worker").inc()
