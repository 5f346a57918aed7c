"""Who is asking: bearer tokens scoped to one organization, and the refusals the API answers."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from profd.store import Index, Organization, Project


class Refused(Exception):
    """A request the API refuses; answered as ``{"detail": ...}`` with `status`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return JSONResponse({"detail": error.detail}, status_code=error.status)


def organization(index: Index, request: Request, slug: str) -> Organization:
    """The organization `slug`, if the request's bearer token belongs to it."""
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "authentication credentials were not provided")
    found = index.organization_for_token(token.strip())
    if found is None:
        raise Refused(401, "invalid token")
    if found.slug != slug:
        raise Refused(403, "the token does not belong to this organization")
    return found


def project(index: Index, request: Request, org: str, slug_or_id: str) -> Project:
    owner = organization(index, request, org)
    found = index.project_by_slug(owner.id, slug_or_id)
    if found is None and slug_or_id.isdigit():
        by_id = index.project(int(slug_or_id))
        found = by_id if by_id is not None and by_id.organization_id == owner.id else None
    if found is None:
        raise Refused(404, f"no project {slug_or_id!r} in {org!r}")
    return found
