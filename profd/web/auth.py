"""Who is asking: bearer tokens of one organization carrying Sentry's scopes, and the
refusals the API answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from profd.errors import Refused
from profd.store.protocols import Directory
from profd.store.records import Organization, Project, Token
from profd.store.tenancy import SCOPES, Scope

# What holding a scope lets a token do, as in Sentry: org:admin includes org:read (Sentry's
# scope hierarchy), and project:write includes project:releases because Sentry's upload
# endpoints, which ask for project:releases, take project:write as well.  Nothing includes
# project:write or org:admin, so a token that may mint tokens cannot thereby write projects.
GRANTS: dict[str, frozenset[Scope]] = {
    "org:read": frozenset({"org:read"}),
    "org:admin": frozenset({"org:admin", "org:read"}),
    "project:write": frozenset({"project:write", "project:releases"}),
    "project:releases": frozenset({"project:releases"}),
}


def granted(scopes: Iterable[str]) -> frozenset[Scope]:
    """Every scope a token holding `scopes` may act with."""
    return frozenset().union(*(GRANTS.get(s, frozenset()) for s in scopes))


async def refused(request: Request, error: Exception) -> Response:
    """Every route's refusals, answered the one way: ``{"detail": ...}`` with the status."""
    assert isinstance(error, Refused)
    return JSONResponse({"detail": error.detail}, status_code=error.status, headers=error.headers)


class Caller(NamedTuple):
    organization: Organization
    token: Token


def caller(directory: Directory, request: Request, slug: str, *, scope: Scope) -> Caller:
    """The request's bearer token and its organization, if that is `slug` and the token
    may act with `scope`: 401 without a live token, 403 for another organization or a
    missing scope."""
    header = request.headers.get("authorization") or ""
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise Refused(401, "authentication credentials were not provided")
    token = directory.token_for_secret(secret.strip())
    if token is None:
        raise Refused(401, "invalid token")
    found = directory.organization(token.organization_id)
    if found is None or found.slug != slug:
        raise Refused(403, "the token does not belong to this organization")
    if scope not in granted(token.scopes):
        raise Refused(403, missing_scope(scope, token.scopes))
    return Caller(found, token)


def missing_scope(scope: Scope, held: Iterable[str]) -> str:
    wider = [s for s in SCOPES if s != scope and scope in GRANTS[s]]
    also = f" (or {' or '.join(wider)})" if wider else ""
    return f"this needs a token with the {scope} scope{also}; this token has {' '.join(held) or 'none'}"


def organization(directory: Directory, request: Request, slug: str, *, scope: Scope) -> Organization:
    """The organization `slug`, if the request's bearer token belongs to it and has `scope`."""
    return caller(directory, request, slug, scope=scope).organization


def project(directory: Directory, request: Request, org: str, slug_or_id: str, *, scope: Scope) -> Project:
    owner = organization(directory, request, org, scope=scope)
    found = directory.project_by_slug(owner.id, slug_or_id)
    if found is None and slug_or_id.isascii() and slug_or_id.isdigit():
        by_id = directory.project(int(slug_or_id))
        found = by_id if by_id is not None and by_id.organization_id == owner.id else None
    if found is None:
        raise Refused(404, f"no project {slug_or_id!r} in {org!r}")
    return found
