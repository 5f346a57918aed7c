"""The query API, ``/api/v1/``: projects, keys, tokens, profiles, functions and outcomes of an
organization.

Every route takes a bearer token of the organization in the path (``profd tokens create``)
and never shows another organization's data.  Each route states the scope it needs, as
Sentry's do: reads ``org:read``; projects and DSN keys ``project:write``; tokens
``org:admin``.  Schema: ``/api/v1/openapi.json``.  Organizations themselves are created
with the CLI only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from profd.errors import Refused
from profd.formats import FormatError
from profd.formats.flame_tree import OTHER
from profd.formats.pprof import to_pprof
from profd.formats.speedscope import to_collapsed, to_speedscope
from profd.query.flamegraph import (
    DEFAULT_MAX_NODES,
    MAX_MAX_NODES,
    MIN_MAX_NODES,
    NoSuchNode,
    differential,
    flamegraph,
)
from profd.query.functions import SORTABLE, function_table
from profd.query.profiles import BadCursor, ProfileFilter, list_profiles
from profd.query.regressions import regressions
from profd.services import Services
from profd.store import BlobNotFound, Project, ProjectKey
from profd.store.records import Token
from profd.store.tenancy import ID_LIMIT, InvalidScope, InvalidSlug, RevokedToken, SlugTaken, parse_scopes
from profd.web import auth

Limit = Annotated[int, Query(ge=1, le=1000)]
T = TypeVar("T")


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


Name = Annotated[str, msgspec.Meta(max_length=200)]


class NewProject(msgspec.Struct, forbid_unknown_fields=True):
    # The slug's rule lives with the directory (`InvalidSlug`), which the CLI shares.
    slug: str
    name: Name | None = None


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: Name = ""
    # None: the scopes of the token asking, which it may grant as it holds them.
    scopes: list[str] | None = None


def _body_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """OpenAPI for a JSON body that a route decodes with msgspec (FastAPI only documents
    bodies it parses itself)."""
    _, components = msgspec.json.schema_components([struct])
    schema = components[struct.__name__]
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


async def _decode_body(request: Request, kind: type[T], empty: T | None = None) -> T:
    """The request's JSON body as `kind`; a malformed one is the client's 400."""
    body = await request.body()
    if not body.strip() and empty is not None:
        return empty
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.DecodeError as e:
        raise Refused(400, f"invalid body: {e}") from None


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


def comparison(
    where: Selection,
    before_start: float | None = None,
    before_end: float | None = None,
    after_start: float | None = None,
    after_end: float | None = None,
    before_release: str | None = None,
    after_release: str | None = None,
) -> tuple[ProfileFilter, ProfileFilter]:
    """Two selections to compare: the shared filter, narrowed to two windows or two releases."""
    if not (before_release or after_release or before_start or before_end or after_start or after_end):
        raise Refused(400, "give two time ranges (before_*/after_*) or two releases to compare")
    for start, end in ((before_start, before_end), (after_start, after_end)):
        if start is not None and end is not None and end <= start:
            raise Refused(400, "each window's end must be after its start")
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
    return before, after


Compared = Annotated[tuple[ProfileFilter, ProfileFilter], Depends(comparison)]

MaxNodes = Annotated[
    int,
    Query(
        ge=MIN_MAX_NODES,
        le=MAX_MAX_NODES,
        description=(
            "Node budget: the heaviest nodes are kept (each with its ancestors) and the other"
            f" children of each kept node fold into one `{OTHER}` child (`is_other` in its frame)"
            " holding exactly their samples, occurrences, durations and self time, so every"
            " total stays exact.  An answer that fits is the whole tree, unchanged."
        ),
    ),
]

ROOT_DESCRIPTION = (
    "A node to zoom into: its stack from the root as a JSON array of [name, package] pairs,"
    ' the `name` and `image` of the frames along it, e.g. `[["main",""],["handle","app"]]`.'
    " The answer is that node's subtree with the whole budget to itself, its ancestors kept"
    " above it; exact wherever the subtree fits.  404 when the stack is not in the selection."
)

_Root = msgspec.json.Decoder(list[tuple[str, str]])


def zoom_root(
    root: Annotated[str | None, Query(description=ROOT_DESCRIPTION)] = None,
) -> list[tuple[str, str]] | None:
    """The `root` parameter, decoded; a malformed one is the client's 400."""
    if root is None:
        return None
    try:
        stack = _Root.decode(root)
    except msgspec.DecodeError as e:
        raise Refused(400, f"root must be a JSON array of [name, package] pairs: {e}") from None
    if not stack:
        raise Refused(400, "root must name at least one frame")
    return stack


Root = Annotated[list[tuple[str, str]] | None, Depends(zoom_root)]


def api_routes(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["query"])
    directory, reads = services.directory, services.reads

    def project_json(p: Project) -> dict[str, Any]:
        return {
            "id": p.id,
            "slug": p.slug,
            "name": p.name,
            "has_profiles": p.has_profiles,
            "dsn": services.dsn(p),
        }

    def key_json(key: ProjectKey) -> dict[str, Any]:
        return {
            "id": key.id,
            "public_key": key.public_key,
            "dsn": services.key_dsn(key),
            "active": key.active,
        }

    def token_json(token: Token) -> dict[str, Any]:
        return {
            "id": token.id,
            "name": token.name,
            "scopes": list(token.scopes),
            "parent_id": token.parent_id,
            "created": token.created,
            "revoked": token.revoked,
        }

    @router.get("/organizations/{org}", summary="The organization the token belongs to")
    def organization(request: Request, org: str) -> Response:
        owner = auth.organization(directory, request, org, scope="org:read")
        return _json(
            {"id": owner.id, "slug": owner.slug, "name": owner.name, "retention_days": owner.retention_days}
        )

    @router.get("/organizations/{org}/projects", summary="Projects and their DSNs")
    def projects(request: Request, org: str) -> Response:
        owner = auth.organization(directory, request, org, scope="org:read")
        return _json([project_json(p) for p in directory.projects(owner.id)])

    @router.post(
        "/organizations/{org}/projects",
        summary="Create a project and its first DSN key",
        status_code=201,
        openapi_extra=_body_schema(NewProject),
    )
    async def create_project(request: Request, org: str) -> Response:
        owner = auth.organization(directory, request, org, scope="project:write")
        wanted = await _decode_body(request, NewProject)
        try:
            created = directory.create_project(owner.id, wanted.slug, wanted.name)
        except InvalidSlug as e:
            raise Refused(400, str(e)) from None
        except SlugTaken as e:
            raise Refused(409, str(e)) from None
        return _json(project_json(created), status=201)

    @router.get("/organizations/{org}/projects/{project}/keys", summary="A project's DSN keys")
    def keys(request: Request, org: str, project: str) -> Response:
        # The keys are in the DSNs that listing projects shows anyway.
        target = auth.project(directory, request, org, project, scope="org:read")
        return _json([key_json(k) for k in directory.keys(target.id)])

    @router.post("/organizations/{org}/projects/{project}/keys", summary="Add a DSN key", status_code=201)
    def create_key(request: Request, org: str, project: str) -> Response:
        target = auth.project(directory, request, org, project, scope="project:write")
        return _json(key_json(directory.create_key(target.id)), status=201)

    @router.delete(
        "/organizations/{org}/projects/{project}/keys/{public_key}",
        summary="Revoke a DSN key: ingest refuses it from then on",
        status_code=204,
    )
    def revoke_key(request: Request, org: str, project: str, public_key: str) -> Response:
        target = auth.project(directory, request, org, project, scope="project:write")
        if not directory.revoke_key(target.id, public_key):
            raise Refused(404, f"no key {public_key!r} in project {project!r}")
        return Response(status_code=204)

    @router.get("/organizations/{org}/tokens", summary="The organization's tokens (never their secrets)")
    def tokens(request: Request, org: str) -> Response:
        owner = auth.organization(directory, request, org, scope="org:admin")
        return _json([token_json(t) for t in directory.tokens(owner.id)])

    @router.post(
        "/organizations/{org}/tokens",
        summary="Create a token with some of the asking token's scopes; its secret is in this answer only",
        status_code=201,
        openapi_extra=_body_schema(NewToken),
    )
    async def create_token(request: Request, org: str) -> Response:
        owner, parent = auth.caller(directory, request, org, scope="org:admin")
        wanted = await _decode_body(request, NewToken, empty=NewToken())
        try:
            scopes = parse_scopes(parent.scopes if wanted.scopes is None else wanted.scopes)
        except InvalidScope as e:
            raise Refused(400, str(e)) from None
        beyond = [s for s in scopes if s not in auth.granted(parent.scopes)]
        if beyond:
            raise Refused(
                403,
                f"a token cannot grant scopes it does not have: {' '.join(beyond)} (it has {' '.join(parent.scopes)})",
            )
        try:
            token, secret = directory.issue_token(owner.id, wanted.name, scopes, parent_id=parent.id)
        except RevokedToken:
            raise Refused(401, "invalid token") from None
        return _json({**token_json(token), "token": secret}, status=201)

    @router.delete(
        "/organizations/{org}/tokens/{token_id}",
        summary="Revoke a token and the tokens it minted: they are refused (401) from then on",
        status_code=204,
    )
    def revoke_token(
        request: Request, org: str, token_id: Annotated[int, Path(ge=1, lt=ID_LIMIT)]
    ) -> Response:
        owner = auth.organization(directory, request, org, scope="org:admin")
        if not directory.revoke_token(owner.id, token_id):
            raise Refused(404, f"no token {token_id} in {org!r}")
        return Response(status_code=204)

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
        owner = auth.organization(directory, request, org, scope="org:read")
        try:
            page = list_profiles(
                reads, owner.id, where, sort=sort, descending=order == "desc", cursor=cursor, limit=limit
            )
        except BadCursor as e:
            raise Refused(400, str(e)) from None
        return _json(page)

    @router.get(
        "/organizations/{org}/projects/{project_id}/profiles/{profile_id}",
        summary="One profile: as stored, as speedscope, as collapsed stacks, or as a gzipped pprof file",
    )
    def profile(
        request: Request,
        org: str,
        project_id: str,
        profile_id: str,
        format: Literal["json", "speedscope", "collapsed", "pprof"] = "json",
    ) -> Response:
        target = auth.project(directory, request, org, project_id, scope="org:read")
        metadata = reads.profile(target.id, profile_id.replace("-", "").lower())
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
            if format == "pprof":
                data = to_pprof(
                    document, time_nanos=round(metadata.start * 1e9), duration_nanos=metadata.duration_ns
                )
                return Response(
                    data,
                    media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{metadata.profile_id}.pb.gz"'},
                )
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
        owner = auth.organization(directory, request, org, scope="org:read")
        return _json(function_table(reads, owner.id, where, sort=sort, limit=limit))

    @router.get(
        "/organizations/{org}/flamegraph",
        summary="Aggregate flamegraph of the selected profiles",
        description=(
            "Speedscope-shaped: `shared.frames`, `shared.frame_infos` and one sampled profile."
            f" At most `max_nodes` nodes: a bigger tree keeps its heaviest nodes and folds the"
            f" rest of each kept node's children into one `{OTHER}` child (`is_other` in its frame),"
            " with exact sums; `metadata.truncated`, `nodes` and `total_nodes` say so. `root`"
            " zooms: " + ROOT_DESCRIPTION
        ),
    )
    def aggregate_flamegraph(
        request: Request,
        org: str,
        where: Selection,
        root: Root,
        max_nodes: MaxNodes = DEFAULT_MAX_NODES,
    ) -> Response:
        owner = auth.organization(directory, request, org, scope="org:read")
        try:
            return _json(flamegraph(reads, owner.id, where, max_nodes=max_nodes, root=root))
        except NoSuchNode:
            raise Refused(404, "no node at that root in this selection") from None

    @router.get(
        "/organizations/{org}/flamegraph/diff",
        summary="Differential flamegraph: each frame's share of self time before and after",
        description=(
            "Frames by the size of their change; beyond `max_nodes`, the rest are summed in one"
            f" `{OTHER}` entry (`other: true`). With `root`, only the frames under that node: "
            + ROOT_DESCRIPTION
        ),
    )
    def differential_flamegraph(
        request: Request, org: str, compared: Compared, root: Root, max_nodes: MaxNodes = DEFAULT_MAX_NODES
    ) -> Response:
        owner = auth.organization(directory, request, org, scope="org:read")
        return _json(differential(reads, owner.id, *compared, max_nodes=max_nodes, root=root))

    @router.get(
        "/organizations/{org}/regressions",
        summary="Functions whose p95 (or self time per profile) rose between two windows or releases",
    )
    def function_regressions(
        request: Request,
        org: str,
        compared: Compared,
        metric: Literal["p95", "sum"] = "p95",
        threshold: Annotated[float, Query(gt=0, le=100, description="Relative rise, 0.1 = 10%")] = 0.1,
        min_count: Annotated[int, Query(ge=1, description="Occurrences needed in each window")] = 10,
        limit: Limit = 50,
    ) -> Response:
        owner = auth.organization(directory, request, org, scope="org:read")
        found = regressions(
            reads, owner.id, *compared, metric=metric, threshold=threshold, min_count=min_count, limit=limit
        )
        return _json({"regressions": found})

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
        owner = auth.organization(directory, request, org, scope="org:read")
        if start is not None and end is not None and end <= start:
            raise Refused(400, "end must be after start")
        rows = reads.outcome_series(owner.id, start=start, end=end, interval=interval)
        return JSONResponse(
            [
                {
                    "bucket": row.bucket,
                    "outcome": row.outcome.name.lower(),
                    "reason": row.reason,
                    "category": row.category.api_name,
                    "times": row.times,
                    "quantity": row.quantity,
                }
                for row in rows
            ]
        )

    return router
