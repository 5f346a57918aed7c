"""Request bodies read as they arrive, never past a bound: a 413 as soon as a body is longer
than its route allows (at once when its Content-Length says so), without reading the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from profd.errors import Refused


async def bounded_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body piece by piece; Refused(413) once it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Refused(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise Refused(413, f"the request body is larger than {limit} bytes")
    received = 0
    async for piece in request.stream():
        received += len(piece)
        if received > limit:
            raise Refused(413, f"the request body is larger than {limit} bytes")
        yield piece


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, within `limit`."""
    return b"".join([piece async for piece in bounded_body(request, limit)])
