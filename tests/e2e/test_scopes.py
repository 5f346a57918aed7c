"""Token scopes on a live server: each route asks for its scope, a token mints no more than
it has, revoking a token revokes what it minted, and the UI's sign-in token only reads."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.clients import sentry_cli
from tests.e2e.server import Server
from tests.e2e.test_api import call, get
from tests.e2e.test_proguard import NPM_CACHE, request, token, upload_chunk

ORG = "/api/v1/organizations/default"


def scoped(server: Server, *scopes: str) -> str:
    """A token with these scopes, from `profd tokens create --scope`."""
    flags = [arg for scope in scopes for arg in ("--scope", scope)]
    done = subprocess.run(
        [sys.executable, "-m", "profd", "tokens", "create", "--data-dir", str(server.data_dir), *flags],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def refusals(server: Server, secret: str) -> dict[str, tuple[int, str]]:
    """What every write and upload route answers this token (status and detail), having
    checked that none of them wrote anything."""
    index = server.index()
    keys = index.keys(1)
    key = keys[0].public_key
    victim, victim_secret = index.issue_token(1, "victim", ["org:read"])
    data = b"a chunk nobody may store"
    sha1 = hashlib.sha1(data).hexdigest()
    assemble = json.dumps({sha1: {"name": "prog", "chunks": [sha1]}}).encode()
    bundle = json.dumps({"checksum": sha1, "chunks": [sha1], "projects": ["default"]}).encode()
    answers = {
        "create project": call(server, "POST", f"{ORG}/projects", secret, {"slug": "not-allowed"})[:2],
        "create key": call(server, "POST", f"{ORG}/projects/default/keys", secret)[:2],
        "revoke key": call(server, "DELETE", f"{ORG}/projects/default/keys/{key}", secret)[:2],
        "list tokens": call(server, "GET", f"{ORG}/tokens", secret)[:2],
        "create token": call(server, "POST", f"{ORG}/tokens", secret, {"scopes": ["org:read"]})[:2],
        "revoke token": call(server, "DELETE", f"{ORG}/tokens/{victim.id}", secret)[:2],
        "chunk options": request(server, "/api/0/organizations/default/chunk-upload/", None, secret),
        "assemble": request(server, "/api/0/projects/default/default/files/difs/assemble/", assemble, secret),
        "bundle": request(server, "/api/0/organizations/default/artifactbundle/assemble/", bundle, secret),
    }
    found: dict[str, tuple[int, str]] = {}
    for name, (status, body) in answers.items():
        answer = json.loads(body) if isinstance(body, bytes) and status >= 400 else body
        found[name] = (status, answer["detail"] if status >= 400 else "")
    found["chunk upload"] = (upload_chunk(server, secret, sha1, data), "")
    assert index.project_by_slug(1, "not-allowed") is None
    assert index.keys(1) == keys
    assert index.token_for_secret(victim_secret) == victim
    assert not (server.data_dir / "symbols" / "chunks" / sha1).exists()
    return found


def test_a_read_only_token_reads_and_writes_nothing(server: Server) -> None:
    secret = scoped(server, "org:read")
    for path in ("", "/projects", "/projects/default/keys", "/profiles", "/functions", "/outcomes"):
        assert get(server, ORG + path, secret)[0] == 200, path
    answers = refusals(server, secret)
    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(answers, 403)
    assert "project:write scope" in answers["create project"][1]
    assert "org:admin scope" in answers["create token"][1]
    assert "project:releases scope (or project:write)" in answers["assemble"][1]
    assert "this token has org:read" in answers["chunk options"][1]


def test_project_write_manages_projects_and_uploads_but_not_tokens_nor_reads(server: Server) -> None:
    secret = scoped(server, "project:write")
    status, created, _ = call(server, "POST", f"{ORG}/projects", secret, {"slug": "written"})
    assert status == 201 and created["slug"] == "written"
    assert call(server, "POST", f"{ORG}/projects/written/keys", secret)[0] == 201
    assert request(server, "/api/0/organizations/default/chunk-upload/", None, secret)[0] == 200
    for method, path in (("GET", "/tokens"), ("POST", "/tokens"), ("DELETE", "/tokens/1")):
        status, answer, _ = call(server, method, ORG + path, secret)
        assert status == 403 and "org:admin" in answer["detail"], path
    status, answer = get(server, f"{ORG}/profiles", secret)
    assert status == 403 and "org:read scope (or org:admin)" in answer["detail"]


def test_project_releases_uploads_only(server: Server) -> None:
    secret = scoped(server, "project:releases")
    assert request(server, "/api/0/organizations/default/chunk-upload/", None, secret)[0] == 200
    data = b"a chunk for the releases token"
    assert upload_chunk(server, secret, hashlib.sha1(data).hexdigest(), data) == 200
    assert call(server, "POST", f"{ORG}/projects", secret, {"slug": "releases-only"})[0] == 403
    assert get(server, f"{ORG}/projects", secret)[0] == 403


def test_a_token_mints_only_scopes_it_has(server: Server) -> None:
    admin = scoped(server, "org:admin")
    tokens = f"{ORG}/tokens"
    for wanted in (["project:write"], ["org:read", "project:releases"]):
        status, answer, _ = call(server, "POST", tokens, admin, {"name": "wider", "scopes": wanted})
        assert status == 403 and "cannot grant" in answer["detail"] and wanted[-1] in answer["detail"], wanted
    # org:admin includes org:read, so it can grant it; with no scopes asked, its own.
    status, reader, _ = call(server, "POST", tokens, admin, {"name": "reader", "scopes": ["org:read"]})
    assert status == 201 and reader["scopes"] == ["org:read"] and reader["parent_id"]
    assert get(server, f"{ORG}/projects", reader["token"])[0] == 200
    assert call(server, "POST", tokens, reader["token"], {"scopes": ["org:read"]})[0] == 403
    status, same, _ = call(server, "POST", tokens, admin, {"name": "same"})
    assert status == 201 and same["scopes"] == ["org:admin"]
    # A subset of a full token's scopes, in Sentry's order whatever the request's.
    status, ci, _ = call(server, "POST", tokens, token(server), {"scopes": ["project:releases", "org:read"]})
    assert status == 201 and ci["scopes"] == ["org:read", "project:releases"]
    listed = {t["id"]: t for t in get(server, tokens, token(server))[1]}
    assert listed[reader["id"]]["scopes"] == ["org:read"] and listed[ci["id"]]["parent_id"] is not None


@pytest.mark.parametrize(
    "body", [{"scopes": ["org:write"]}, {"scopes": ["project:read"]}, {"scopes": []}, {"scopes": "org:read"}]
)
def test_unknown_or_no_scopes_are_400(server: Server, body: object) -> None:
    status, answer, _ = call(server, "POST", f"{ORG}/tokens", token(server), body)
    assert status == 400 and answer["detail"]


def test_revoking_a_token_revokes_the_tokens_it_minted(server: Server) -> None:
    root = token(server)
    tokens = f"{ORG}/tokens"
    status, child, _ = call(server, "POST", tokens, root, {"name": "child", "scopes": ["org:admin"]})
    assert status == 201
    status, grandchild, _ = call(server, "POST", tokens, child["token"], {"name": "grandchild"})
    assert status == 201 and grandchild["parent_id"] == child["id"]
    status, sibling, _ = call(server, "POST", tokens, root, {"name": "sibling", "scopes": ["org:read"]})
    assert call(server, "DELETE", f"{tokens}/{child['id']}", root)[0] == 204
    assert get(server, f"{ORG}", child["token"])[0] == 401
    assert get(server, f"{ORG}", grandchild["token"])[0] == 401
    assert get(server, f"{ORG}", sibling["token"])[0] == 200
    listed = {t["id"]: t["revoked"] for t in get(server, tokens, root)[1]}
    assert (listed[child["id"]], listed[grandchild["id"]], listed[sibling["id"]]) == (True, True, False)


def test_the_ui_sign_in_token_only_reads(server: Server) -> None:
    assert server.log is not None
    links = re.findall(r"Open the UI: http://\S+/#token=(\S+)", server.log.read_text())
    secret = links[-1]
    assert get(server, f"{ORG}/profiles", secret)[0] == 200
    answers = refusals(server, secret)
    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(answers, 403)


@pytest.mark.npm
@pytest.mark.skipif(not sentry_cli.npm_available(), reason="npm installs sentry-cli")
def test_sentry_cli_uploads_with_project_releases_and_is_refused_without(
    server: Server, tmp_path: Path
) -> None:
    binary = sentry_cli.install(NPM_CACHE)
    text = "# compiler: R8\ncom.example.scopes.Main -> a:\n    1:1:void main():3:3 -> a\n"
    mapping = tmp_path / "mapping.txt"
    mapping.write_text(text)
    refused = sentry_cli.run(binary, server.url, scoped(server, "org:read"), "upload-proguard", str(mapping))
    assert refused.returncode != 0 and "project:releases" in refused.stderr + refused.stdout
    uploaded = sentry_cli.run(
        binary, server.url, scoped(server, "project:releases"), "upload-proguard", str(mapping)
    )
    assert uploaded.returncode == 0, uploaded.stderr
    assert f"OK {uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_DNS, 'guardsquare.com'), text)}" in uploaded.stdout
