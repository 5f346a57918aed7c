"""The ASGI app: Sentry's envelope endpoint, and the pipeline worker beside it.

SDKs post envelopes to ``/api/{project_id}/envelope/`` exactly as they post to Sentry.
The worker consumes the bus in a thread of the same process and stops with it, finishing
the message in hand; what it has not committed is processed again on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from profd.bus.worker import CONSUMER_GROUP, stream_processor
from profd.ingest.endpoint import IngestError, public_key_of
from profd.services import Services
from profd.web.api import api_routes
from profd.web.auth import Refused, refused
from profd.web.uploads import upload_routes

log = logging.getLogger(__name__)


async def bad_parameters(request: Request, error: Exception) -> Response:
    """Invalid parameters are the client's mistake: 400 with what was wrong, not 422."""
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return JSONResponse({"detail": problems}, status_code=400)


def create_app(services: Services, run_worker: bool = True) -> FastAPI:
    endpoint = services.envelope_endpoint()

    async def expire_periodically() -> None:
        while True:
            try:
                removed = await run_in_threadpool(services.profiles.expire)
                if removed:
                    log.info("retention: %d profiles deleted", removed)
            except Exception:
                log.exception("retention run failed")
            await asyncio.sleep(services.settings.retention_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        retention = asyncio.create_task(expire_periodically())
        processor = None
        thread = None
        if run_worker:
            processor = stream_processor(services.queue.consumer(CONSUMER_GROUP), services.task_context())
            thread = threading.Thread(target=processor.run, name="profd-worker", daemon=True)
            thread.start()
        yield
        retention.cancel()
        if processor is not None and thread is not None:
            processor.signal_shutdown()
            thread.join(timeout=60)

    app = FastAPI(
        title="profd",
        summary="Profiles from Sentry SDKs: stored, symbolicated and queryable.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )

    @app.post("/api/{project_id}/envelope/", include_in_schema=False)
    async def envelope(project_id: int, request: Request) -> Response:
        body = await request.body()
        public_key = public_key_of(
            request.headers.get("x-sentry-auth"), request.query_params.get("sentry_key")
        )
        try:
            # Decompressing and expanding is CPU work: keep it off the event loop.
            event_id = await run_in_threadpool(
                endpoint.accept, project_id, public_key, body, request.headers.get("content-encoding")
            )
        except IngestError as e:
            headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
            return JSONResponse({"detail": e.detail}, status_code=e.status, headers=headers)
        return JSONResponse({"id": event_id})

    app.include_router(upload_routes(services))
    app.include_router(api_routes(services))
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(RequestValidationError, bad_parameters)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
