"""@sentry/browser in headless Chromium sends to a live `profd serve` from a page of another origin.

The page is served from a second loopback port, so every request to profd is cross-origin and
the browser enforces CORS on it: the SDK's own POST (a CORS "simple" request, no preflight)
and a hand-made POST with X-Sentry-Auth (preflighted). Chromium is driven as in test_ui.py;
without it the test skips, unless PROFD_REQUIRE_BROWSER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.clients import browser as sentry_browser
from tests.e2e.conftest import unavailable
from tests.e2e.server import Server

# What this module needs beyond Python: `make test-fast` leaves it out.
pytestmark = [pytest.mark.npm, pytest.mark.browser]

# npm packages are kept here between runs; one install per fresh checkout.
NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm-e2e"


class _QuietFiles(SimpleHTTPRequestHandler):
    # Module scripts load only with a JavaScript MIME type; Python 3.11 has none for .mjs.
    def guess_type(self, path: str | os.PathLike[str]) -> str:
        if str(path).endswith((".js", ".mjs")):
            return "text/javascript"
        return super().guess_type(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin(browser: Any) -> Iterator[str]:
    """The origin serving the page and node_modules: 127.0.0.1 on a port of its own."""
    if not sentry_browser.npm_available():
        unavailable("node and npm are needed to install @sentry/browser")
    project = sentry_browser.install(NPM_CACHE)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(project)))
    thread = threading.Thread(target=files.serve_forever, name="page-origin", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{files.server_address[1]}"
    files.shutdown()
    files.server_close()


def test_the_browser_sdk_sends_to_profd_from_another_origin(
    browser: Any, page_origin: str, server: Server
) -> None:
    assert page_origin != server.url
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    console_errors: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("requestfailed", lambda r: failed.append(f"{r.method} {r.url}: {r.failure}"))
    try:
        page.goto(f"{page_origin}/index.html?{urlencode({'dsn': server.dsn})}")
        page.wait_for_function("() => typeof window.run === 'function'")
        report = page.evaluate("() => window.run()")
    finally:
        context.close()
    print(json.dumps(report, indent=1))

    assert not page_errors, page_errors
    assert not failed, failed  # a CORS refusal fails the request: net::ERR_FAILED
    # Chromium logs every 4xx as "Failed to load resource"; the refused probe's 401 is expected.
    assert [e for e in console_errors if "status of 401" not in e] == []

    # The SDK's own transport read a status for every envelope: the answers were readable.
    assert report["flushed"] is True
    assert report["sent"], "the SDK sent nothing"
    assert all(entry.get("status") == 200 for entry in report["sent"]), report["sent"]
    assert any("event" in entry["items"] for entry in report["sent"]), report["sent"]
    assert report["eventId"]

    # A preflighted POST: the browser sent it only because the preflight allowed its headers.
    accepted = report["accepted"]
    assert accepted.get("status") == 200, accepted
    assert json.loads(accepted["body"]) == {"id": accepted["eventId"]}
    # A refusal is readable too (not a TypeError): the page's SDK can tell 401 from an outage.
    assert report["refused"].get("status") == 401, report["refused"]


def test_a_preflight_from_the_page_origin_is_answered(page_origin: str, server: Server) -> None:
    project_id = server.dsn.rsplit("/", 1)[1]
    request = urllib.request.Request(
        f"{server.url}/api/{project_id}/envelope/",
        method="OPTIONS",
        headers={
            "Origin": page_origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-sentry-auth,sentry-trace,baggage",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        headers = response.headers
    assert headers["Access-Control-Allow-Origin"] in ("*", page_origin)
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-sentry-auth", "sentry-trace", "baggage"} <= allowed
    assert headers["Access-Control-Max-Age"] == "3600"
