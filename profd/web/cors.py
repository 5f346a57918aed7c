"""CORS on the ingest routes, answered as Relay answers it, so browser SDKs can send from any page.

A page's SDK posts envelopes cross-origin: the DSN names profd, the page is the user's site.
Any origin is allowed, because the DSN's public key is meant to sit in page source and
authorizes nothing but sending; Relay's ``cors()`` layer (relay-server, middlewares/cors.rs)
does the same with ``allow_origin(Any)``. Only the routes an SDK posts to get it: the query
API under ``/api/v1/`` is read with a bearer token and gets no CORS headers at all, so a
foreign page cannot use a signed-in browser to read it.

A pure ASGI middleware rather than Starlette's ``CORSMiddleware``, which applies to every
route of the app it wraps and so would open the query API too.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Where SDKs send: ``/api/{project_id}/envelope/`` (every current SDK) and ``/store/`` (older
# ones). profd has no store route; covering it anyway lets a browser read the 404/405 an old
# SDK gets instead of an opaque CORS failure. Project ids are numbers, so ``/api/v1/`` never matches.
INGEST_PATH = re.compile(r"^/api/\d+/(?:envelope|store)/?$")

# `*`, as Relay sends: no page's cookies ride along (a wildcard forbids credentialed
# requests), and the answer does not vary by Origin, so caches need no `Vary: Origin`.
ALLOW_ORIGIN = "*"
# Relay allows POST; GET is what its own comment says the /store/ route would also need.
ALLOW_METHODS = "GET, POST"
# Relay's list, plus the tracing headers: the SDK's own transport does not add them, but a
# page's other instrumentation (a fetch wrapper, OpenTelemetry) may, and a preflight that
# refuses them drops the event.
ALLOW_HEADERS = ", ".join(
    (
        "x-sentry-auth",
        "x-requested-with",
        "x-forwarded-for",
        "origin",
        "referer",
        "accept",
        "content-type",
        "authentication",
        "authorization",
        "content-encoding",
        "transfer-encoding",
        "sentry-trace",
        "baggage",
    )
)
# Without this a page's script cannot read why it was refused or throttled: the SDK reads
# X-Sentry-Rate-Limits and Retry-After to back off; X-Sentry-Error carries Sentry's reason.
EXPOSE_HEADERS = "x-sentry-error, x-sentry-rate-limits, retry-after"
# An hour, as Relay: one preflight per page and hour rather than one per envelope
# (browsers cap it lower anyway: Chromium at two hours, Firefox at a day).
MAX_AGE = "3600"


def is_ingest_path(path: str) -> bool:
    return INGEST_PATH.match(path) is not None


class EnvelopeCors:
    """Answers preflights on the ingest routes and marks every answer there as readable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ingest_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await preflight(send)
            return

        async def send_readable(message: Message) -> None:
            # Every answer, 200 as much as 401/413/429: a response without these headers
            # reaches the page as a network error, and the SDK could not tell a rate limit
            # (back off) from a refused key.
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Access-Control-Allow-Origin"] = ALLOW_ORIGIN
                headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_readable)


async def preflight(send: Send) -> None:
    """200 with an empty body for any OPTIONS on an ingest route, as tower-http's CorsLayer
    answers in Relay. Every origin and every header an SDK sends is allowed, so the answer
    is the same for all; a request it does not cover is refused by the browser, not here."""
    headers = [
        (b"access-control-allow-origin", ALLOW_ORIGIN.encode()),
        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
        (b"access-control-max-age", MAX_AGE.encode()),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
