"""The query API on a live server: every route, auth isolation, and bad parameters (400, never 500)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server
from tests.e2e.test_proguard import token

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def get(server: Server, path: str, secret: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    request = urllib.request.Request(server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            kind = response.headers.get("content-type", "")
            return response.status, json.loads(body) if "json" in kind else body.decode()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def filled(server: Server) -> tuple[Server, str, str]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "profd",
            "process",
            "--data-dir",
            str(server.data_dir),
            *map(str, sorted(EXAMPLES.glob("*.json"))),
        ],
        check=True,
        capture_output=True,
    )
    index = server.index()
    other = index.organization_by_slug("other") or index.create_organization("other")
    if not index.projects(other.id):
        index.create_project(other.id, "elsewhere")
    return server, token(server), index.create_token(other.id)


def test_projects_and_openapi(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    status, projects = get(server, "/api/v1/organizations/default/projects", secret)
    assert status == 200 and projects[0]["slug"] == "default" and projects[0]["dsn"].startswith("http://")
    status, schema = get(server, "/api/v1/openapi.json", None)
    assert status == 200 and "/api/v1/organizations/{org}/profiles" in schema["paths"]


def test_tokens_see_only_their_organization(filled: tuple[Server, str, str]) -> None:
    server, _, other = filled
    for path in ("/projects", "/profiles", "/functions", "/outcomes"):
        assert get(server, f"/api/v1/organizations/default{path}", other)[0] == 403
        assert get(server, f"/api/v1/organizations/default{path}", None)[0] == 401
        assert get(server, f"/api/v1/organizations/default{path}", "nope")[0] == 401
    status, projects = get(server, "/api/v1/organizations/other/projects", other)
    assert status == 200 and [p["slug"] for p in projects] == ["elsewhere"]
    status, page = get(server, "/api/v1/organizations/other/profiles", other)
    assert status == 200 and page["items"] == []
    assert (
        get(
            server, "/api/v1/organizations/other/projects/1/profiles/5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40", other
        )[0]
        == 404
    )


def test_profiles_filter_and_paginate(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    status, page = get(
        server, "/api/v1/organizations/default/profiles?platform=python&release=shop@2.4.1", secret
    )
    assert status == 200 and [p["profile_id"] for p in page["items"]] == ["5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40"]
    seen = []
    cursor = ""
    for _ in range(10):
        status, page = get(server, f"/api/v1/organizations/default/profiles?limit=1{cursor}", secret)
        seen += [p["profile_id"] for p in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) >= 3


def test_one_profile_in_each_format(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    base = "/api/v1/organizations/default/projects/default/profiles/5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40"
    status, stored = get(server, base, secret)
    assert status == 200 and stored["platform"] == "python"
    status, speedscope = get(server, base + "?format=speedscope", secret)
    assert status == 200 and speedscope["profiles"][speedscope["activeProfileIndex"]]["name"] == "MainThread"
    names = {frame["name"] for frame in speedscope["shared"]["frames"]}
    assert {"handle_request", "render", "apply_discounts"} <= names
    status, collapsed = get(server, base + "?format=collapsed", secret)
    assert status == 200 and "<module>;handle_request;price_cart;apply_discounts " in collapsed
    android = (
        "/api/v1/organizations/default/projects/1/profiles/e3a1c9f0b7d24c6e8f5a4b3c2d1e0f99?format=speedscope"
    )
    status, refused = get(server, android, secret)
    assert status == 400 and "not available" in refused["detail"]


def test_functions_and_outcomes(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    status, functions = get(
        server, "/api/v1/organizations/default/functions?platform=python&sort=p95", secret
    )
    assert status == 200
    render = next(f for f in functions if f["function"] == "render")
    assert render["count"] >= 1 and render["p50"] <= render["p95"] <= render["p99"] <= render["sum"]
    assert "5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40" in render["examples"]
    status, outcomes = get(server, "/api/v1/organizations/default/outcomes?interval=86400", secret)
    assert status == 200
    assert {(o["outcome"], o["category"]) for o in outcomes} >= {
        ("accepted", "profile"),
        ("invalid", "profile"),
    }


@pytest.mark.parametrize(
    "query",
    [
        "/profiles?limit=0",
        "/profiles?limit=x",
        "/profiles?cursor=%%%",
        "/profiles?start=10&end=5",
        "/profiles?sort=x",
        "/functions?sort=bogus",
        "/functions?start=abc",
        "/outcomes?interval=1",
        "/profiles?project=a",
    ],
)
def test_bad_parameters_are_400_with_a_message(filled: tuple[Server, str, str], query: str) -> None:
    server, secret, _ = filled
    status, body = get(server, f"/api/v1/organizations/default{query}", secret)
    assert status == 400 and body["detail"]


def test_aggregate_flamegraph_from_the_index(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    status, graph = get(
        server, "/api/v1/organizations/default/flamegraph?platform=python&release=shop@2.4.1", secret
    )
    assert status == 200 and graph["metadata"]["profiles"] == 1
    frames = graph["shared"]["frames"]
    by_name = {f["name"]: i for i, f in enumerate(frames)}
    assert {"handle_request", "render", "apply_discounts", "dumps"} <= by_name.keys()
    infos = graph["shared"]["frame_infos"]
    assert infos[by_name["handle_request"]]["weight"] == 39  # every active sample passes through it
    assert (
        infos[by_name["apply_discounts"]]["sumSelfTime"] == infos[by_name["apply_discounts"]]["sumDuration"]
    )
    profile = graph["profiles"][0]
    assert sum(profile["weights"]) == profile["endValue"] == 39
    stacks = {tuple(frames[i]["name"] for i in stack) for stack in profile["samples"]}
    assert ("<module>", "handle_request", "price_cart", "apply_discounts") in stacks
    assert get(server, "/api/v1/organizations/default/flamegraph?start=5&end=1", secret)[0] == 400


def test_differential_flamegraph_between_releases(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    path = "/api/v1/organizations/default/flamegraph/diff?before_release=shop@2.4.1&after_release=api@1.8.0"
    status, diff = get(server, path, secret)
    assert status == 200
    frames = {f["name"]: f for f in diff["frames"]}
    # shop@2.4.1 is the python example, api@1.8.0 the node chunk: their frames swap places.
    assert (
        frames["apply_discounts"]["before"]["self_time_ns"]
        > 0
        == frames["apply_discounts"]["after"]["self_time_ns"]
    )
    assert frames["apply_discounts"]["change"] < 0 < frames["resizeImage"]["change"]
    assert abs(sum(f["change"] for f in diff["frames"])) < 1e-3
    assert get(server, "/api/v1/organizations/default/flamegraph/diff", secret)[0] == 400
