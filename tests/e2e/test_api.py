"""The query API on a live server: every route, auth isolation, and bad parameters (400, never 500)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from profd.formats.pprof import Profile
from tests.clients.envelopes import post
from tests.e2e.server import Server
from tests.e2e.test_proguard import token
from tests.e2e.wide import Wide, route_weight, wide_fixture  # noqa: F401 (the `wide` fixture)

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
    assert "5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40" in [e["profile_id"] for e in render["examples"]]
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
        "/regressions",
        "/regressions?before_release=a&after_release=b&threshold=0",
        "/regressions?before_release=a&after_release=b&metric=p42",
        "/regressions?before_start=10&before_end=5&after_start=20&after_end=30",
        "/flamegraph/diff?before_start=10&before_end=5&after_start=20&after_end=30",
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


def test_regressions_between_two_releases(filled: tuple[Server, str, str]) -> None:
    server, secret, other = filled
    path = "/api/v1/organizations/default/regressions?before_release=shop@2.4.1&after_release=shop@2.4.1&min_count=1"
    status, body = get(server, path, secret)
    # The same release on both sides: nothing can have got slower.
    assert status == 200 and body == {"regressions": []}
    assert get(server, path, other)[0] == 403
    status, schema = get(server, "/api/v1/openapi.json", None)
    assert "/api/v1/organizations/{org}/regressions" in schema["paths"]


def call(
    server: Server, method: str, path: str, secret: str | None, body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    """Any method; JSON bodies both ways, other answers as raw bytes, and the answer's headers."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            kind = response.headers.get("content-type", "")
            return response.status, json.loads(raw) if "json" in kind else raw, dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_one_profile_as_pprof(filled: tuple[Server, str, str]) -> None:
    server, secret, other = filled
    base = "/api/v1/organizations/default/projects/default/profiles/5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40"
    status, data, headers = call(server, "GET", base + "?format=pprof", secret)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert 'filename="5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40.pb.gz"' in headers["content-disposition"]
    profile = Profile.FromString(gzip.decompress(data))
    strings = profile.string_table
    assert strings[0] == ""
    names = {strings[f.name] for f in profile.function}
    assert {"handle_request", "render", "apply_discounts", "price_cart"} <= names
    locations = {loc.id for loc in profile.location}
    assert all(i in locations for s in profile.sample for i in s.location_id)
    # The index's start time: 2026-11-26T09:30:00Z.
    assert profile.time_nanos == 1795685400 * 10**9
    assert sum(s.value[0] for s in profile.sample) == 45
    assert call(server, "GET", base + "?format=pprof", other)[0] == 403
    android = (
        "/api/v1/organizations/default/projects/1/profiles/e3a1c9f0b7d24c6e8f5a4b3c2d1e0f99?format=pprof"
    )
    status, refused, _ = call(server, "GET", android, secret)
    assert status == 400 and "pprof is not available" in refused["detail"]


def test_the_organization_of_the_token(filled: tuple[Server, str, str]) -> None:
    server, secret, other = filled
    status, org = get(server, "/api/v1/organizations/default", secret)
    assert status == 200 and (org["slug"], org["name"], org["retention_days"]) == ("default", "Default", None)
    status, org = get(server, "/api/v1/organizations/other", other)
    assert status == 200 and org["slug"] == "other"
    assert get(server, "/api/v1/organizations/other", secret)[0] == 403
    assert get(server, "/api/v1/organizations/nowhere", secret)[0] == 403


def test_create_a_project_and_its_first_key(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    base = "/api/v1/organizations/default/projects"
    status, created, _ = call(server, "POST", base, secret, {"slug": "checkout-api", "name": "Checkout API"})
    assert status == 201 and (created["slug"], created["name"]) == ("checkout-api", "Checkout API")
    assert created["dsn"].endswith(f"/{created['id']}") and not created["has_profiles"]
    status, listed = get(server, base, secret)
    assert {"id": created["id"], "slug": "checkout-api"}.items() <= listed[-1].items()
    status, keys = get(server, f"{base}/checkout-api/keys", secret)
    assert status == 200 and [(k["dsn"], k["active"]) for k in keys] == [(created["dsn"], True)]
    status, taken, _ = call(server, "POST", base, secret, {"slug": "checkout-api"})
    assert status == 409 and "exists" in taken["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "Checkout"},
        {"slug": ""},
        {"slug": "x" * 51},
        {"slug": "a b"},
        {"slug": "123"},
        {"slug": 5},
        {"name": "no slug"},
        {"slug": "fine", "extra": 1},
        {"slug": "fine", "name": "n" * 201},
        b"{not json",
        b"",
        [],
    ],
)
def test_bad_project_bodies_are_400_with_a_message(filled: tuple[Server, str, str], body: Any) -> None:
    server, secret, _ = filled
    status, answer, _ = call(server, "POST", "/api/v1/organizations/default/projects", secret, body)
    assert status == 400 and answer["detail"]
    assert get(server, "/api/v1/organizations/default/projects/fine/keys", secret)[0] == 404


def test_a_revoked_key_is_refused_by_ingest(filled: tuple[Server, str, str]) -> None:
    server, secret, _ = filled
    created = call(server, "POST", "/api/v1/organizations/default/projects", secret, {"slug": "revoking"})[1]
    keys = f"/api/v1/organizations/default/projects/{created['id']}/keys"
    status, added, _ = call(server, "POST", keys, secret)
    assert status == 201 and added["active"] and added["dsn"] != created["dsn"]
    first = get(server, keys, secret)[1][0]["public_key"]
    envelope_url = f"{server.url}/api/{created['id']}/envelope/"
    # An envelope with no items: the key is checked, and nothing is stored.
    empty = json.dumps({"event_id": "0" * 32}).encode() + b"\n"
    assert post(envelope_url, empty, key=first) == 200
    assert call(server, "DELETE", f"{keys}/{first}", secret)[0] == 204
    assert post(envelope_url, empty, key=first) == 401
    assert post(envelope_url, empty, key=added["public_key"]) == 200
    listed = get(server, keys, secret)[1]
    assert [(k["public_key"], k["active"]) for k in listed] == [(added["public_key"], True), (first, False)]
    # The project's DSN now names the key that still works.
    project = next(
        p for p in get(server, "/api/v1/organizations/default/projects", secret)[1] if p["slug"] == "revoking"
    )
    assert project["dsn"] == added["dsn"]
    assert call(server, "DELETE", f"{keys}/{'0' * 32}", secret)[0] == 404
    assert call(server, "DELETE", "/api/v1/organizations/default/projects/nothing/keys/abc", secret)[0] == 404
    assert call(server, "POST", "/api/v1/organizations/default/projects/nothing/keys", secret)[0] == 404


def test_tokens_list_create_and_revoke(filled: tuple[Server, str, str]) -> None:
    server, secret, other = filled
    tokens = "/api/v1/organizations/default/tokens"
    status, made, _ = call(server, "POST", tokens, secret, {"name": "ci"})
    assert status == 201 and made["name"] == "ci" and made["token"].startswith("profd_")
    status, listed = get(server, tokens, secret)
    assert status == 200 and made["id"] in [t["id"] for t in listed]
    assert all(set(t) == {"id", "name", "scopes", "parent_id", "created", "revoked"} for t in listed)
    assert made["token"] not in json.dumps(listed)
    # The new token works, until it is revoked; then it gets 401 like any unknown token.
    assert get(server, "/api/v1/organizations/default/projects", made["token"])[0] == 200
    status, unnamed, _ = call(server, "POST", tokens, made["token"])
    assert status == 201 and unnamed["name"] == ""
    assert call(server, "DELETE", f"{tokens}/{made['id']}", secret)[0] == 204
    assert get(server, "/api/v1/organizations/default/projects", made["token"])[0] == 401
    assert get(server, tokens, made["token"])[0] == 401
    # Minted by the revoked token, so revoked with it (tests/e2e/test_scopes.py).
    assert get(server, tokens, unnamed["token"])[0] == 401
    # Another organization's token id is not found through this organization.
    other_id = get(server, "/api/v1/organizations/other/tokens", other)[1][0]["id"]
    assert call(server, "DELETE", f"{tokens}/{other_id}", secret)[0] == 404
    assert get(server, "/api/v1/organizations/other/projects", other)[0] == 200
    for bad in ("abc", "0", "-1"):
        status, answer, _ = call(server, "DELETE", f"{tokens}/{bad}", secret)
        assert status == 400 and answer["detail"]
    for body in ({"name": 3}, {"label": "x"}, b"[1"):
        status, answer, _ = call(server, "POST", tokens, secret, body)
        assert status == 400 and answer["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("POST", "/projects"),
        ("GET", "/projects/default/keys"),
        ("POST", "/projects/default/keys"),
        ("DELETE", "/projects/default/keys/KEY"),
        ("GET", "/tokens"),
        ("POST", "/tokens"),
        ("DELETE", "/tokens/1"),
    ],
)
def test_new_routes_refuse_other_organizations(
    filled: tuple[Server, str, str], method: str, path: str
) -> None:
    server, secret, other = filled
    before = get(server, "/api/v1/organizations/default/projects/default/keys", secret)[1]
    tokens_before = get(server, "/api/v1/organizations/default/tokens", secret)[1]
    url = "/api/v1/organizations/default" + path.replace("KEY", before[0]["public_key"])
    body = {"slug": "intruder"} if path == "/projects" else None
    assert call(server, method, url, other, body)[0] == 403
    assert call(server, method, url, None, body)[0] == 401
    assert call(server, method, url, "profd_nope", body)[0] == 401
    # Nothing changed for the organization that was aimed at.
    assert get(server, "/api/v1/organizations/default/projects/default/keys", secret)[1] == before
    assert get(server, "/api/v1/organizations/default/tokens", secret)[1] == tokens_before
    assert "intruder" not in [
        p["slug"] for p in get(server, "/api/v1/organizations/default/projects", secret)[1]
    ]


def test_flamegraph_node_budget_and_zoom(filled: tuple[Server, str, str]) -> None:
    from urllib.parse import quote

    server, secret, _ = filled
    base = "/api/v1/organizations/default/flamegraph"
    raw = urllib.request.Request(server.url + base, headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(raw, timeout=30) as response:
        whole_bytes = response.read()
    roomy = urllib.request.Request(
        server.url + base + "?max_nodes=100000", headers={"Authorization": f"Bearer {secret}"}
    )
    with urllib.request.urlopen(roomy, timeout=30) as response:
        assert response.read() == whole_bytes  # a tree that fits is answered as it always was
    whole = json.loads(whole_bytes)
    assert "max_nodes" not in whole["metadata"]
    for bad in ("max_nodes=15", "max_nodes=100001", "max_nodes=x", "root=x", "root=%5B%5D", "root=%5B1%5D"):
        status, body = get(server, f"{base}?{bad}", secret)
        assert status == 400 and body["detail"], bad
    assert get(server, f"{base}?root=" + quote(json.dumps([["nope", ""]])), secret)[0] == 404

    status, one = get(server, f"{base}?release=shop@2.4.1", secret)
    frames = one["shared"]["frames"]
    stack = next(s for s in one["profiles"][0]["samples"] if frames[s[1]]["name"] == "handle_request")
    root = [[frames[i]["name"], frames[i]["image"]] for i in stack[:2]]
    status, zoomed = get(
        server, f"{base}?release=shop@2.4.1&max_nodes=16&root=" + quote(json.dumps(root)), secret
    )
    assert status == 200 and zoomed["metadata"]["root"] == root
    assert zoomed["profiles"][0]["endValue"] == 39  # every active sample passes through handle_request
    names = zoomed["shared"]["frames"]
    assert all(
        [names[i]["name"] for i in s[:2]] == [r[0] for r in root] for s in zoomed["profiles"][0]["samples"]
    )

    diff = "/api/v1/organizations/default/flamegraph/diff?before_release=shop@2.4.1&after_release=api@1.8.0"
    status, small = get(server, diff + "&max_nodes=16", secret)
    assert status == 200 and len(small["frames"]) <= 16
    assert get(server, diff + "&max_nodes=3", secret)[0] == 400
    status, under = get(server, diff + "&root=" + quote(json.dumps(root)), secret)
    assert status == 200 and "apply_discounts" in {f["name"] for f in under["frames"]}


def test_flamegraph_bigger_than_the_budget(wide: Wide) -> None:
    from urllib.parse import quote

    server, secret = wide.server, wide.secret
    base = "/api/v1/organizations/default/flamegraph"
    status, whole = get(server, base, secret)
    assert status == 200 and "truncated" not in whole["metadata"]
    status, cut = get(server, f"{base}?max_nodes=16", secret)
    assert status == 200 and cut["metadata"]["truncated"] is True
    assert cut["metadata"]["nodes"] <= 16 < cut["metadata"]["total_nodes"]
    assert cut["profiles"][0]["endValue"] == whole["profiles"][0]["endValue"]
    frames = cut["shared"]["frames"]
    others = [i for i, f in enumerate(frames) if f.get("is_other")]
    assert len(others) == 1 and frames[others[0]]["name"] == "[other]"
    assert cut["shared"]["frame_infos"][others[0]]["p95Duration"] is None
    names = {f["name"] for f in frames}
    assert "route_6" in names and not any(n.startswith("deep_") for n in names)
    # Zoomed on a heavy route, its subtree fits the budget: every deeper frame, exact.
    root = [["<module>", "wide"], ["serve", "wide"], ["route_6", "wide"]]
    status, zoomed = get(server, f"{base}?max_nodes=16&root=" + quote(json.dumps(root)), secret)
    assert status == 200 and "truncated" in zoomed["metadata"] and not zoomed["metadata"]["truncated"]
    names = {f["name"] for f in zoomed["shared"]["frames"]}
    assert {"deep_6_0", "deep_6_1", "deep_6_2"} <= names and "route_5" not in names
    assert zoomed["profiles"][0]["endValue"] == 3 * route_weight(6)
