"""CORS on the ingest routes, as Relay answers it; none on the query API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from profd.services import Services, open_services
from profd.settings import Settings
from profd.web.app import create_app
from profd.web.cors import EnvelopeCors, is_ingest_path

ORIGIN = "https://shop.example"
# The browser SDK's envelope: no profile, an event only; what `captureMessage` sends.
EVENT_ENVELOPE = (
    json.dumps({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "sent_at": "2026-11-26T09:15:57Z"})
    + "\n"
    + json.dumps({"type": "event"})
    + "\n"
    + json.dumps({"message": "hello", "level": "info", "platform": "javascript"})
    + "\n"
).encode()


def client_and_key(services: Services) -> tuple[TestClient, str, int]:
    _, project = services.default_project()
    key = services.directory.keys(project.id)[0]
    return TestClient(create_app(services)), key.public_key, project.id


def assert_readable(headers: Mapping[str, str]) -> None:
    """What a page's script needs to read an answer: its status, and why it was refused."""
    assert headers["access-control-allow-origin"] == "*"
    exposed = {name.strip() for name in headers["access-control-expose-headers"].split(",")}
    assert exposed == {"x-sentry-error", "x-sentry-rate-limits", "retry-after"}


@contextmanager
def limited(tmp_path: Path, **settings: int) -> Iterator[Services]:
    """Services with some limits of their own."""
    services = open_services(Settings.load(data_dir=tmp_path / "limited", **settings))
    try:
        yield services
    finally:
        services.close()


def test_a_preflight_is_answered_as_relay_does(services: Services) -> None:
    client, _, project_id = client_and_key(services)
    response = client.options(
        f"/api/{project_id}/envelope/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-sentry-auth,sentry-trace,baggage",
        },
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert {m.strip() for m in response.headers["access-control-allow-methods"].split(",")} >= {"POST"}
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {
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
    } <= allowed
    assert response.headers["access-control-max-age"] == "3600"
    # Old SDKs' route gets the same answer; without a trailing slash too.
    assert client.options(f"/api/{project_id}/store/").status_code == 200
    assert client.options(f"/api/{project_id}/envelope").status_code == 200


def test_an_accepted_envelope_is_readable_by_the_page(services: Services) -> None:
    client, public_key, project_id = client_and_key(services)
    response = client.post(
        f"/api/{project_id}/envelope/?sentry_key={public_key}&sentry_version=7",
        content=EVENT_ENVELOPE,
        headers={"Origin": ORIGIN, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    assert_readable(response.headers)


def test_refusals_are_readable_by_the_page(services: Services) -> None:
    client, _, project_id = client_and_key(services)
    for query in ("", "?sentry_key=0123456789abcdef0123456789abcdef"):
        response = client.post(
            f"/api/{project_id}/envelope/{query}", content=EVENT_ENVELOPE, headers={"Origin": ORIGIN}
        )
        assert response.status_code == 401
        assert_readable(response.headers)
    # Even without an Origin (a server-side SDK), as Relay: the answer does not vary.
    assert_readable(client.post(f"/api/{project_id}/envelope/", content=EVENT_ENVELOPE).headers)


def test_a_rate_limit_is_readable_by_the_page(tmp_path: Path) -> None:
    # A profile chunk, for a queue with no room for it.
    envelope = b"{}\n" + json.dumps({"type": "profile_chunk", "platform": "javascript"}).encode() + b"\n{}\n"
    with limited(tmp_path, queue_max_depth=0) as services:
        client, public_key, project_id = client_and_key(services)
        response = client.post(
            f"/api/{project_id}/envelope/?sentry_key={public_key}",
            content=envelope,
            headers={"Origin": ORIGIN},
        )
    assert response.status_code == 429
    assert response.headers["retry-after"]
    assert_readable(response.headers)


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413, 500])
def test_every_other_answer_is_readable_by_the_page(status: int) -> None:
    """Whatever the route answers (here a stand-in, so no setting has to provoke each one)."""

    async def answer(request: Request) -> Response:
        return Response(status_code=status, headers={"Retry-After": "60"})

    app = Starlette(routes=[Route("/api/1/envelope/", answer, methods=["POST"])])
    app.add_middleware(EnvelopeCors)
    response = TestClient(app).post("/api/1/envelope/", content=b"{}", headers={"Origin": ORIGIN})
    assert response.status_code == status
    assert_readable(response.headers)
    assert response.headers.get_list("access-control-allow-origin") == ["*"]


def test_the_query_api_gets_no_cors(services: Services) -> None:
    client, _, _ = client_and_key(services)
    answer = client.get("/api/v1/organizations/default/projects", headers={"Origin": ORIGIN})
    assert answer.status_code == 401
    preflight = client.options(
        "/api/v1/organizations/default/projects",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code != 200
    for response in (answer, preflight):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


@pytest.mark.parametrize(
    ("path", "ingest"),
    [
        ("/api/1/envelope/", True),
        ("/api/42/store/", True),
        ("/api/42/envelope", True),
        ("/api/v1/envelope/", False),
        ("/api/v1/organizations/default/projects", False),
        ("/api/1/envelope/x", False),
        ("/api/0/projects/default/default/files/difs/", False),
        ("/", False),
    ],
)
def test_which_paths_are_ingest(path: str, ingest: bool) -> None:
    assert is_ingest_path(path) is ingest
