"""The query API, ``/api/v1/``: projects, profiles, functions and outcomes of an organization.

Every route takes a bearer token of the organization in the path (``profd tokens create``)
and never shows another organization's data.  Schema: ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from profd.formats import FormatError
from profd.formats.outcome import DataCategory, Outcome
from profd.formats.speedscope import to_collapsed, to_speedscope
from profd.query.flamegraph import differential, flamegraph
from profd.query.functions import SORTABLE, function_table
from profd.query.profiles import BadCursor, ProfileFilter, list_profiles
from profd.services import Services
from profd.store import BlobNotFound
from profd.web import auth
from profd.web.auth import Refused

Limit = Annotated[int, Query(ge=1, le=1000)]


def _json(value: Any) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


def profile_filter(
    project: Annotated[list[int] | None, Query(description="Project ids")] = None,
    transaction: str | None = None,
    release: str | None = None,
    environment: str | None = None,
    platform: str | None = None,
    device_class: str | None = None,
    start: Annotated[float | None, Query(description="Unix seconds, inclusive")] = None,
    end: Annotated[float | None, Query(description="Unix seconds, exclusive")] = None,
) -> ProfileFilter:
    """The profile selection every listing route shares, from its query parameters."""
    if start is not None and end is not None and end <= start:
        raise Refused(400, "end must be after start")
    return ProfileFilter(
        project_ids=project,
        transaction=transaction,
        release=release,
        environment=environment,
        platform=platform,
        device_class=device_class,
        start=start,
        end=end,
    )


Selection = Annotated[ProfileFilter, Depends(profile_filter)]


def api_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["query"])
    index = services.index

    @router.get("/organizations/{org}/projects", summary="Projects and their DSNs")
    def projects(request: Request, org: str) -> Response:
        owner = auth.organization(index, request, org)
        return _json(
            [
                {
                    "id": p.id,
                    "slug": p.slug,
                    "name": p.name,
                    "has_profiles": p.has_profiles,
                    "dsn": services.dsn(p),
                }
                for p in index.projects(owner.id)
            ]
        )

    @router.get("/organizations/{org}/profiles", summary="Stored profiles, filtered, newest first")
    def profiles(
        request: Request,
        org: str,
        where: Selection,
        sort: Literal["start", "duration"] = "start",
        order: Literal["asc", "desc"] = "desc",
        cursor: str | None = None,
        limit: Limit = 50,
    ) -> Response:
        owner = auth.organization(index, request, org)
        try:
            page = list_profiles(
                index, owner.id, where, sort=sort, descending=order == "desc", cursor=cursor, limit=limit
            )
        except BadCursor as e:
            raise Refused(400, str(e)) from None
        return _json(page)

    @router.get(
        "/organizations/{org}/projects/{project_id}/profiles/{profile_id}",
        summary="One profile: as stored, as speedscope, or as collapsed stacks",
    )
    def profile(
        request: Request,
        org: str,
        project_id: str,
        profile_id: str,
        format: Literal["json", "speedscope", "collapsed"] = "json",
    ) -> Response:
        target = auth.project(index, request, org, project_id)
        metadata = index.profile(target.id, profile_id.replace("-", "").lower())
        if metadata is None or not metadata.sampled:
            raise Refused(404, f"no profile {profile_id} in project {project_id}")
        try:
            document = services.profiles.load(metadata)
        except BlobNotFound:
            raise Refused(404, f"profile {profile_id} is no longer stored") from None
        try:
            if format == "speedscope":
                return _json(to_speedscope(document))
            if format == "collapsed":
                return PlainTextResponse(to_collapsed(document))
        except FormatError as e:
            raise Refused(400, f"{format} is not available for this profile: {e.message}") from None
        return _json(document)

    @router.get("/organizations/{org}/functions", summary="Functions by self time, with percentiles")
    def functions(
        request: Request,
        org: str,
        where: Selection,
        sort: Annotated[str, Query(pattern="^(" + "|".join(SORTABLE) + ")$")] = "sum",
        limit: Limit = 100,
    ) -> Response:
        owner = auth.organization(index, request, org)
        return _json(function_table(index, owner.id, where, sort=sort, limit=limit))

    @router.get("/organizations/{org}/flamegraph", summary="Aggregate flamegraph of the selected profiles")
    def aggregate_flamegraph(
        request: Request,
        org: str,
        where: Selection,
    ) -> Response:
        owner = auth.organization(index, request, org)
        return _json(flamegraph(index, owner.id, where))

    @router.get(
        "/organizations/{org}/flamegraph/diff",
        summary="Differential flamegraph: each frame's share of self time before and after",
    )
    def differential_flamegraph(
        request: Request,
        org: str,
        where: Selection,
        before_start: float | None = None,
        before_end: float | None = None,
        after_start: float | None = None,
        after_end: float | None = None,
        before_release: str | None = None,
        after_release: str | None = None,
    ) -> Response:
        owner = auth.organization(index, request, org)
        if not (before_release or after_release or before_start or before_end or after_start or after_end):
            raise Refused(400, "give two time ranges (before_*/after_*) or two releases to compare")
        before = msgspec.structs.replace(
            where,
            start=before_start or where.start,
            end=before_end or where.end,
            release=before_release or where.release,
        )
        after = msgspec.structs.replace(
            where,
            start=after_start or where.start,
            end=after_end or where.end,
            release=after_release or where.release,
        )
        return _json(differential(index, owner.id, before, after))

    @router.get(
        "/organizations/{org}/outcomes", summary="Outcomes by time bucket, outcome, reason and category"
    )
    def outcomes(
        request: Request,
        org: str,
        start: float | None = None,
        end: float | None = None,
        interval: Annotated[int, Query(ge=60, le=86400 * 31)] = 3600,
    ) -> Response:
        owner = auth.organization(index, request, org)
        if start is not None and end is not None and end <= start:
            raise Refused(400, "end must be after start")
        clauses: list[str] = ["org_id = ?"]
        params: list[Any] = [owner.id]
        if start is not None:
            clauses.append("timestamp >= ?")
            params.append(start)
        if end is not None:
            clauses.append("timestamp < ?")
            params.append(end)
        rows = index.select(
            f"SELECT CAST(timestamp / {interval} AS INTEGER) * {interval} AS bucket, outcome, reason, category,"
            f" COUNT(*) AS times, SUM(quantity) AS quantity FROM outcomes WHERE {' AND '.join(clauses)}"
            " GROUP BY bucket, outcome, reason, category ORDER BY bucket, outcome, category, reason",
            tuple(params),
        )
        return JSONResponse(
            [
                {
                    "bucket": row["bucket"],
                    "outcome": Outcome(row["outcome"]).name.lower(),
                    "reason": row["reason"],
                    "category": DataCategory(row["category"]).api_name,
                    "times": row["times"],
                    "quantity": row["quantity"],
                }
                for row in rows
            ]
        )

    return router
