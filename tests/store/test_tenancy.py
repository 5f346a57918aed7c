"""Projects, DSN keys and tokens in the index: slugs, revocation, and organization scoping."""

from __future__ import annotations

from pathlib import Path

import pytest

from profd.store import Index
from profd.store.index import MIGRATIONS, InvalidSlug, SlugTaken


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
    token, secret = index.issue_token(acme.id, "ci")
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


def test_tokens_made_before_names_existed_read_with_an_empty_name(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    org = index.create_organization("acme")
    secret = index.create_token(org.id)
    # Back to the schema before the name column, as an older profd left it.
    before = next(n for n, script in enumerate(MIGRATIONS) if "tokens ADD COLUMN name" in script)
    index._db.executescript(f"ALTER TABLE tokens DROP COLUMN name; PRAGMA user_version = {before};")
    index.close()
    reopened = Index(tmp_path / "i.sqlite3")
    assert [t.name for t in reopened.tokens(org.id)] == [""]
    assert reopened.organization_for_token(secret) == org
