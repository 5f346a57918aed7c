"""Sentry's envelope route, ``POST /api/{project_id}/envelope/``: the body read within bounds.

The DSN key is checked from the headers before a byte of the body is read, so a stranger's
300 MB POST costs nothing.  The body is then read piece by piece, decoded as it arrives,
and refused with 413 the moment it passes ``max_envelope_size`` (as sent or decoded), so
memory never holds more than that.  An SDK behind a tunnel names its DSN only in the
envelope's header line: then the key is checked as soon as that line has arrived.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from profd.errors import BackendUnavailable, Refused
from profd.formats import FormatError
from profd.formats.encoding import Decoder
from profd.ingest.endpoint import (
    MAX_HEADER_LINE,
    EnvelopeEndpoint,
    Sender,
    dsn_public_key,
    public_key_of,
)
from profd.logs import handling, new_request_id
from profd.metrics import METRICS
from profd.web.bodies import bounded_body

log = logging.getLogger(__name__)


def ingest_routes(endpoint: EnvelopeEndpoint) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/api/{project_id}/envelope/")
    async def envelope(project_id: int, request: Request) -> Response:
        identity = new_request_id(request.headers.get("x-request-id"))
        with handling(identity):
            response = await _answer(endpoint, project_id, request, identity)
            log.info("envelope for project %s: %d", project_id, response.status_code)
        METRICS.envelopes.labels(str(response.status_code)).inc()
        response.headers["X-Request-Id"] = identity
        return response

    return router


async def _answer(endpoint: EnvelopeEndpoint, project_id: int, request: Request, identity: str) -> Response:
    try:
        event_id = await _receive(endpoint, project_id, request, identity)
    except Refused as e:
        return JSONResponse({"detail": e.detail}, status_code=e.status, headers=e.headers)
    except BackendUnavailable as e:
        # Nothing of the envelope was queued: the SDK may send it again.
        log.error("envelope for project %s refused with 503: %s", project_id, e)
        METRICS.backend_errors.labels(e.backend, "ingest").inc()
        return JSONResponse(
            {"detail": f"profd cannot store envelopes right now: {e}"},
            status_code=503,
            headers={"Retry-After": "10"},
        )
    return JSONResponse({"id": event_id})


async def _receive(
    endpoint: EnvelopeEndpoint, project_id: int, request: Request, identity: str
) -> str | None:
    headers = request.headers
    public_key = public_key_of(
        headers.get("x-sentry-auth"),
        headers.get("authorization"),
        query_key=request.query_params.get("sentry_key"),
    )
    sender: Sender | None = None
    if public_key is not None:
        sender = await run_in_threadpool(endpoint.authenticate, project_id, public_key)
    limit = endpoint.max_envelope_size
    try:
        decoder = Decoder(headers.get("content-encoding"), limit)
        decoded = bytearray()
        searched = 0  # how much of the decoded body is known to hold no newline
        async for piece in bounded_body(request, limit):
            decoded += decoder.decode(piece)
            if sender is None:
                end = decoded.find(b"\n", searched)
                searched = len(decoded)
                if end >= 0 or searched > MAX_HEADER_LINE:
                    line = bytes(decoded[: end if end >= 0 else MAX_HEADER_LINE])
                    sender = await run_in_threadpool(endpoint.authenticate, project_id, dsn_public_key(line))
        decoder.finish()
        data = bytes(decoded)
    except Refused as e:
        if e.status == 413:  # as sent: counted against the sender like a body too large decoded
            raise await run_in_threadpool(endpoint.too_large, sender, e.detail) from None
        raise
    except FormatError as e:
        if e.reason == "too_large":
            raise await run_in_threadpool(endpoint.too_large, sender, e.message) from None
        raise Refused(400, e.message) from None
    if sender is None:
        # A body of one line: the header is all there is.
        sender = await run_in_threadpool(endpoint.authenticate, project_id, dsn_public_key(data))
    return await run_in_threadpool(endpoint.accept, sender, data, identity)
