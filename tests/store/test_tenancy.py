"""Projects, DSN keys and tokens in the index: slugs, revocation, and organization scoping."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from profd.store import Index
from profd.store.index import MIGRATIONS, SCOPES, InvalidScope, InvalidSlug, RevokedToken, SlugTaken


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "i.sqlite3")


@pytest.mark.parametrize("slug", ["web", "a", "x" * 50, "api-2_beta", "3d"])
def test_good_slugs_make_a_project_with_one_active_key(index: Index, slug: str) -> None:
    org = index.create_organization("acme")
    project = index.create_project(org.id, slug, "Web")
    assert (project.slug, project.name) == (slug, "Web")
    (key,) = index.keys(project.id)
    assert key.active and index.key_by_public_key(key.public_key) == key


@pytest.mark.parametrize("slug", ["", "Web", "with space", "x" * 51, "é", "a/b", "42", "web\n"])
def test_bad_slugs_are_refused_and_leave_nothing(index: Index, slug: str) -> None:
    org = index.create_organization("acme")
    with pytest.raises(InvalidSlug):
        index.create_project(org.id, slug)
    assert index.projects(org.id) == []


def test_a_slug_is_unique_per_organization_only(index: Index) -> None:
    acme, other = index.create_organization("acme"), index.create_organization("other")
    first = index.create_project(acme.id, "web")
    with pytest.raises(SlugTaken):
        index.create_project(acme.id, "web")
    assert index.create_project(other.id, "web").organization_id == other.id
    # The refused duplicate left no key behind.
    assert len(index.keys(first.id)) == 1
    assert index.select("SELECT COUNT(*) AS n FROM project_keys")[0]["n"] == 2


def test_revoked_keys_stay_listed_inactive_and_after_active_ones(index: Index) -> None:
    project = index.create_project(index.create_organization("acme").id, "web")
    (first,) = index.keys(project.id)
    second = index.create_key(project.id)
    assert index.revoke_key(project.id, first.public_key) is True
    assert index.revoke_key(project.id, first.public_key) is True  # again: still fine
    found = index.key_by_public_key(first.public_key)
    assert found is not None and not found.active
    # The first key listed (the one a project's DSN shows) is an active one.
    assert [(k.public_key, k.active) for k in index.keys(project.id)] == [
        (second.public_key, True),
        (first.public_key, False),
    ]


def test_a_key_is_revoked_only_through_its_own_project(index: Index) -> None:
    org = index.create_organization("acme")
    web, api = index.create_project(org.id, "web"), index.create_project(org.id, "api")
    (key,) = index.keys(web.id)
    assert index.revoke_key(api.id, key.public_key) is False
    assert index.revoke_key(web.id, "0" * 32) is False
    assert index.keys(web.id)[0].active


def test_tokens_are_listed_without_secrets_and_revoked_per_organization(index: Index) -> None:
    acme, other = index.create_organization("acme"), index.create_organization("other")
    token, secret = index.issue_token(acme.id, "ci", SCOPES)
    plain = index.create_token(acme.id)
    foreign = index.create_token(other.id)
    assert index.organization_for_token(secret) == acme
    listed = index.tokens(acme.id)
    assert [(t.id, t.name, t.revoked) for t in listed] == [(token.id, "ci", False), (listed[1].id, "", False)]
    assert listed[0] == token
    assert (
        secret not in repr(listed)
        and index.select("SELECT * FROM tokens WHERE token_hash = ?", (secret,)) == []
    )
    # Another organization cannot revoke acme's token, nor can acme revoke one it does not have.
    assert index.revoke_token(other.id, token.id) is False
    assert index.revoke_token(acme.id, 10_000) is False
    assert index.organization_for_token(secret) == acme
    assert index.revoke_token(acme.id, token.id) is True
    assert index.organization_for_token(secret) is None
    assert index.organization_for_token(plain) == acme and index.organization_for_token(foreign) == other
    assert [t.revoked for t in index.tokens(acme.id)] == [True, False]
    assert [t.organization_id for t in index.tokens(other.id)] == [other.id]


def index_as_of(path: Path, version: int) -> sqlite3.Connection:
    """An index file as a profd that knew only the first `version` migrations left it."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    db.execute("INSERT INTO organizations (slug, name, created) VALUES ('acme', 'acme', 0)")
    return db


def test_tokens_made_before_names_existed_read_with_an_empty_name(tmp_path: Path) -> None:
    before = next(n for n, script in enumerate(MIGRATIONS) if "tokens ADD COLUMN name" in script)
    db = index_as_of(tmp_path / "i.sqlite3", before)
    db.execute("INSERT INTO tokens (organization_id, token_hash, created) VALUES (1, 'h', 0)")
    db.close()
    reopened = Index(tmp_path / "i.sqlite3")
    assert [t.name for t in reopened.tokens(1)] == [""]


def test_tokens_made_before_scopes_existed_keep_every_scope(tmp_path: Path) -> None:
    # They could do everything before; an upgrade must not lock their holders out.
    before = next(n for n, script in enumerate(MIGRATIONS) if "tokens ADD COLUMN scopes" in script)
    db = index_as_of(tmp_path / "i.sqlite3", before)
    secret = "profd_old"
    db.execute(
        "INSERT INTO tokens (organization_id, token_hash, created, name) VALUES (1, ?, ?, 'ci')",
        (hashlib.sha256(secret.encode()).hexdigest(), time.time()),
    )
    db.close()
    reopened = Index(tmp_path / "i.sqlite3")
    (token,) = reopened.tokens(1)
    assert (token.name, token.scopes, token.parent_id) == ("ci", SCOPES, None)
    found = reopened.organization_for_token(secret)
    assert found is not None and found.slug == "acme"
    assert reopened.token_for_secret(secret) == token


def test_tokens_keep_their_scopes_in_a_fixed_order_and_refuse_unknown_ones(index: Index) -> None:
    org = index.create_organization("acme")
    token, secret = index.issue_token(org.id, "ci", ["project:releases", "org:read", "org:read"])
    assert token.scopes == ("org:read", "project:releases")
    assert index.token_for_secret(secret) == token == index.tokens(org.id)[0]
    assert index.create_token(org.id) and index.tokens(org.id)[1].scopes == SCOPES
    for bad in (["org:write"], ["org:read", "Org:Read"], [], ["project:read"]):
        with pytest.raises(InvalidScope):
            index.issue_token(org.id, "bad", bad)
    assert len(index.tokens(org.id)) == 2


def test_revoking_a_token_revokes_the_tokens_it_minted_and_theirs(index: Index) -> None:
    acme = index.create_organization("acme")
    root, _ = index.issue_token(acme.id, "root", SCOPES)
    child, child_secret = index.issue_token(acme.id, "child", ["org:read", "org:admin"], parent_id=root.id)
    _, grandchild_secret = index.issue_token(acme.id, "grandchild", ["org:read"], parent_id=child.id)
    sibling, sibling_secret = index.issue_token(acme.id, "sibling", ["org:read"], parent_id=root.id)
    other, other_secret = index.issue_token(acme.id, "other", SCOPES)
    assert index.tokens(acme.id)[2].parent_id == child.id
    assert index.revoke_token(acme.id, child.id) is True
    revoked = {t.name for t in index.tokens(acme.id) if t.revoked}
    assert revoked == {"child", "grandchild"}
    assert index.token_for_secret(child_secret) is None and index.token_for_secret(grandchild_secret) is None
    assert index.token_for_secret(sibling_secret) == sibling
    assert index.token_for_secret(other_secret) == other
    # A revoked token mints nothing more, even if its request got past authentication.
    with pytest.raises(RevokedToken):
        index.issue_token(acme.id, "late", ["org:read"], parent_id=child.id)
    # Nor can a token of another organization be named as a parent.
    foreign, _ = index.issue_token(index.create_organization("other").id, "x", SCOPES)
    with pytest.raises(RevokedToken):
        index.issue_token(acme.id, "stolen", ["org:read"], parent_id=foreign.id)
    assert index.revoke_token(acme.id, root.id) is True
    assert {t.name for t in index.tokens(acme.id) if not t.revoked} == {"other"}
