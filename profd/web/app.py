"""The ASGI app: Sentry's envelope endpoint, and the pipeline worker beside it.

SDKs post envelopes to ``/api/{project_id}/envelope/`` exactly as they post to Sentry.
The pipeline worker (a supervised child process or thread, see profd.supervisor) starts
and stops with the app, finishing the message in hand; what it has not committed is
processed again by the next one.
The web UI is static files (``profd/web/static``) served at ``/``; it reads ``/api/v1/``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from profd.errors import BackendUnavailable, Refused
from profd.services import Services
from profd.supervisor import Supervised
from profd.web.api import api_routes
from profd.web.auth import refused
from profd.web.cors import EnvelopeCors
from profd.web.health import health_routes
from profd.web.ingest import ingest_routes
from profd.web.uploads import upload_routes

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# What `make assets` copies from npm; the UI cannot draw a flamegraph without them.
VENDOR_FILES = ("vendor/d3.min.js", "vendor/d3-flamegraph.min.js", "vendor/d3-flamegraph.css")

ASSETS_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>profd: web UI not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The web UI's libraries are not installed</h1>
<p>profd serves its UI with d3 and d3-flame-graph from npm, copied into
<code>profd/web/static/vendor/</code> at set-up time. Run <code>make assets</code> in the
profd checkout (it needs <code>npm</code>), then reload this page.</p>
<p>Ingest and the API at <code>/api/v1/</code> work without them.</p>
</body></html>
"""


async def bad_parameters(request: Request, error: Exception) -> Response:
    """Invalid parameters are the client's mistake: 400 with what was wrong, not 422."""
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return JSONResponse({"detail": problems}, status_code=400)


async def unavailable(request: Request, error: Exception) -> Response:
    """A backend that is down (object storage during an upload, say) passes: 503, try again."""
    assert isinstance(error, BackendUnavailable)
    log.warning("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "10"})


class _Revalidated(StaticFiles):
    """Static files the browser revalidates (ETag) on every load, so an upgrade is seen at once."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def create_app(
    services: Services, worker: Supervised | None = None, static_dir: Path = STATIC_DIR
) -> FastAPI:
    """The app; it starts `worker` with itself and stops it after."""
    endpoint = services.envelope_endpoint()

    async def expire_periodically() -> None:
        while True:
            try:
                removed = await run_in_threadpool(services.profiles.expire)
                if removed:
                    log.info("retention: %d profiles deleted", removed)
                # Upload chunks nobody assembled within a day, and leftovers of crashed assemblies.
                collected = await run_in_threadpool(services.symbols.collect_garbage)
                if collected:
                    log.info("retention: %d upload leftovers deleted", collected)
            except Exception:
                log.exception("retention run failed")
            await asyncio.sleep(services.settings.retention_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        retention = asyncio.create_task(expire_periodically())
        if worker is not None:
            worker.start()
        yield
        retention.cancel()
        if worker is not None:
            await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="profd",
        summary="Profiles from Sentry SDKs: stored, symbolicated and queryable.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.add_middleware(EnvelopeCors)

    app.include_router(ingest_routes(endpoint))
    app.include_router(upload_routes(services))
    app.include_router(api_routes(services))
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(BackendUnavailable, unavailable)
    app.add_exception_handler(RequestValidationError, bad_parameters)

    app.include_router(health_routes(services, worker))

    @app.get("/", include_in_schema=False)
    async def ui() -> Response:
        # Checked per request, so `make assets` while the server runs needs no restart.
        if not all((static_dir / name).is_file() for name in VENDOR_FILES):
            return HTMLResponse(ASSETS_MISSING, status_code=503)
        # The page names its scripts without versions: always revalidate rather than cache.
        return FileResponse(static_dir / "index.html", headers={"Cache-Control": "no-cache"})

    # Mounted last: the API, ingest and upload routes above always win over a file name.
    app.mount("/static", _Revalidated(directory=static_dir, check_dir=False), name="static")
    return app
