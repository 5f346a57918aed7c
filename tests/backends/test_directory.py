"""The `Directory` conformance suite: organizations, projects, DSN keys and tokens, with
slugs, revocation and organization scoping, on every implementation (conftest.py)."""

from __future__ import annotations

import pytest

from profd.store.protocols import Directory
from profd.store.tenancy import ID_LIMIT, SCOPES, InvalidScope, InvalidSlug, RevokedToken, SlugTaken


def test_organizations_are_found_by_id_and_slug(directory: Directory) -> None:
    acme = directory.create_organization("acme", "Acme Inc.")
    short = directory.create_organization("short", retention_days=7)
    assert (acme.slug, acme.name, acme.retention_days) == ("acme", "Acme Inc.", None)
    assert directory.organization(acme.id) == acme == directory.organization_by_slug("acme")
    assert directory.organization(short.id) == short and short.retention_days == 7
    assert directory.create_organization("plain").name == "plain"
    assert directory.organization_by_slug("nobody") is None and directory.organization(10_000) is None


@pytest.mark.parametrize("slug", ["web", "a", "x" * 50, "api-2_beta", "3d"])
def test_good_slugs_make_a_project_with_one_active_key(directory: Directory, slug: str) -> None:
    org = directory.create_organization("acme")
    project = directory.create_project(org.id, slug, "Web")
    assert (project.slug, project.name, project.has_profiles) == (slug, "Web", False)
    assert directory.project(project.id) == project == directory.project_by_slug(org.id, slug)
    (key,) = directory.keys(project.id)
    assert key.active and len(key.public_key) == 32 and directory.key_by_public_key(key.public_key) == key


@pytest.mark.parametrize("slug", ["", "Web", "with space", "x" * 51, "é", "a/b", "42", "web\n"])
def test_bad_slugs_are_refused_and_leave_nothing(directory: Directory, slug: str) -> None:
    org = directory.create_organization("acme")
    with pytest.raises(InvalidSlug):
        directory.create_project(org.id, slug)
    assert directory.projects(org.id) == []


def test_a_slug_is_unique_per_organization_only(directory: Directory) -> None:
    acme, other = directory.create_organization("acme"), directory.create_organization("other")
    first = directory.create_project(acme.id, "web")
    with pytest.raises(SlugTaken):
        directory.create_project(acme.id, "web")
    second = directory.create_project(other.id, "web")
    assert second.organization_id == other.id
    # The refused duplicate left no project and no key behind.
    assert directory.projects(acme.id) == [first] and directory.projects(other.id) == [second]
    assert directory.projects() == [first, second]
    assert len(directory.keys(first.id)) == len(directory.keys(second.id)) == 1
    assert (
        directory.project_by_slug(acme.id, "web") == first
        and directory.project_by_slug(other.id, "api") is None
    )


def test_ids_no_project_has_name_none(directory: Directory) -> None:
    directory.create_project(directory.create_organization("acme").id, "web")
    for project_id in (0, -1, 10_000, ID_LIMIT, 2**64):
        assert directory.project(project_id) is None


def test_revoked_keys_stay_listed_inactive_and_after_active_ones(directory: Directory) -> None:
    project = directory.create_project(directory.create_organization("acme").id, "web")
    (first,) = directory.keys(project.id)
    second = directory.create_key(project.id)
    assert directory.revoke_key(project.id, first.public_key) is True
    assert directory.revoke_key(project.id, first.public_key) is True  # again: still fine
    found = directory.key_by_public_key(first.public_key)
    assert found is not None and not found.active
    # The first key listed (the one a project's DSN shows) is an active one.
    assert [(k.public_key, k.active) for k in directory.keys(project.id)] == [
        (second.public_key, True),
        (first.public_key, False),
    ]


def test_a_key_is_revoked_only_through_its_own_project(directory: Directory) -> None:
    org = directory.create_organization("acme")
    web, api = directory.create_project(org.id, "web"), directory.create_project(org.id, "api")
    (key,) = directory.keys(web.id)
    assert directory.revoke_key(api.id, key.public_key) is False
    assert directory.revoke_key(web.id, "0" * 32) is False
    assert directory.keys(web.id)[0].active
    assert directory.key_by_public_key("0" * 32) is None


def test_tokens_are_listed_without_secrets_and_revoked_per_organization(directory: Directory) -> None:
    acme, other = directory.create_organization("acme"), directory.create_organization("other")
    token, secret = directory.issue_token(acme.id, "ci", SCOPES)
    plain = directory.create_token(acme.id)
    foreign = directory.create_token(other.id)
    assert secret.startswith("profd_") and directory.organization_for_token(secret) == acme
    listed = directory.tokens(acme.id)
    assert [(t.id, t.name, t.revoked) for t in listed] == [(token.id, "ci", False), (listed[1].id, "", False)]
    assert listed[0] == token and secret not in repr(listed)
    # Another organization cannot revoke acme's token, nor can acme revoke one it does not have.
    assert directory.revoke_token(other.id, token.id) is False
    assert directory.revoke_token(acme.id, 10_000) is False
    assert directory.organization_for_token(secret) == acme
    assert directory.revoke_token(acme.id, token.id) is True
    assert directory.organization_for_token(secret) is None
    assert (
        directory.organization_for_token(plain) == acme and directory.organization_for_token(foreign) == other
    )
    assert directory.organization_for_token("profd_unknown") is None
    assert [t.revoked for t in directory.tokens(acme.id)] == [True, False]
    assert [t.organization_id for t in directory.tokens(other.id)] == [other.id]


def test_tokens_keep_their_scopes_in_a_fixed_order_and_refuse_unknown_ones(directory: Directory) -> None:
    org = directory.create_organization("acme")
    token, secret = directory.issue_token(org.id, "ci", ["project:releases", "org:read", "org:read"])
    assert token.scopes == ("org:read", "project:releases")
    assert directory.token_for_secret(secret) == token == directory.tokens(org.id)[0]
    assert directory.create_token(org.id) and directory.tokens(org.id)[1].scopes == SCOPES
    for bad in (["org:write"], ["org:read", "Org:Read"], [], ["project:read"]):
        with pytest.raises(InvalidScope):
            directory.issue_token(org.id, "bad", bad)
    assert len(directory.tokens(org.id)) == 2


def test_revoking_a_token_revokes_the_tokens_it_minted_and_theirs(directory: Directory) -> None:
    acme = directory.create_organization("acme")
    root, _ = directory.issue_token(acme.id, "root", SCOPES)
    child, child_secret = directory.issue_token(
        acme.id, "child", ["org:read", "org:admin"], parent_id=root.id
    )
    _, grandchild_secret = directory.issue_token(acme.id, "grandchild", ["org:read"], parent_id=child.id)
    sibling, sibling_secret = directory.issue_token(acme.id, "sibling", ["org:read"], parent_id=root.id)
    other, other_secret = directory.issue_token(acme.id, "other", SCOPES)
    assert directory.tokens(acme.id)[2].parent_id == child.id
    assert directory.revoke_token(acme.id, child.id) is True
    revoked = {t.name for t in directory.tokens(acme.id) if t.revoked}
    assert revoked == {"child", "grandchild"}
    assert (
        directory.token_for_secret(child_secret) is None
        and directory.token_for_secret(grandchild_secret) is None
    )
    assert directory.token_for_secret(sibling_secret) == sibling
    assert directory.token_for_secret(other_secret) == other
    # A revoked token mints nothing more, even if its request got past authentication.
    with pytest.raises(RevokedToken):
        directory.issue_token(acme.id, "late", ["org:read"], parent_id=child.id)
    # Nor can a token of another organization be named as a parent.
    foreign, _ = directory.issue_token(directory.create_organization("other").id, "x", SCOPES)
    with pytest.raises(RevokedToken):
        directory.issue_token(acme.id, "stolen", ["org:read"], parent_id=foreign.id)
    assert directory.revoke_token(acme.id, root.id) is True
    assert {t.name for t in directory.tokens(acme.id) if not t.revoked} == {"other"}
