"""The upload routes sentry-cli 3.x uses, unchanged: chunk upload and debug-file assembly.

``GET .../chunk-upload/`` tells the CLI how to chunk; ``POST .../chunk-upload/`` receives
gzip chunks named by their SHA-1; ``POST .../files/difs/assemble/`` is polled until each
file is ``ok`` or ``error``, answering ``not_found`` with the chunks still missing.  Every
route needs a bearer token of the organization (``profd tokens create``).
"""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from profd.services import Services
from profd.store import Organization, Project
from profd.symbols.store import BadDebugFile, DebugFile
from profd.web import auth
from profd.web.auth import Refused

CHUNK_SIZE = 8 * 1024 * 1024
MAX_FILE_SIZE = 2 * 1024 * 1024 * 1024
MAX_REQUEST_SIZE = 32 * 1024 * 1024


class AssembleFile(msgspec.Struct):
    name: str
    chunks: list[str]
    debug_id: str | None = None


class AssembleBundle(msgspec.Struct):
    checksum: str
    chunks: list[str]
    projects: list[str] = []
    version: str | None = None
    dist: str | None = None


def upload_routes(services: Services) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    index, symbols = services.index, services.symbols

    def organization(request: Request, slug: str) -> Organization:
        return auth.organization(index, request, slug)

    def project(request: Request, org: str, slug: str) -> Project:
        return auth.project(index, request, org, slug)

    @router.get("/api/0/organizations/{org}/chunk-upload/")
    async def chunk_options(request: Request, org: str) -> Response:
        organization(request, org)
        return JSONResponse(
            {
                "url": str(request.url).split("?")[0],
                "chunkSize": CHUNK_SIZE,
                "chunksPerRequest": 64,
                "maxFileSize": MAX_FILE_SIZE,
                "maxRequestSize": MAX_REQUEST_SIZE,
                "concurrency": 4,
                "hashAlgorithm": "sha1",
                "compression": ["gzip"],
                "accept": ["debug_files", "proguard", "artifact_bundles", "sources"],
            }
        )

    @router.post("/api/0/organizations/{org}/chunk-upload/")
    async def chunk_upload(request: Request, org: str) -> Response:
        organization(request, org)
        form = await request.form(max_part_size=CHUNK_SIZE * 2)
        for field, value in form.multi_items():
            if isinstance(value, str) or field not in ("file", "file_gzip"):
                continue
            data = await value.read()
            try:
                if field == "file_gzip":
                    data = gzip.decompress(data)
                await run_in_threadpool(symbols.put_chunk, value.filename or "", data)
            except (OSError, EOFError, zlib.error) as e:
                raise Refused(400, f"chunk {value.filename} is not valid gzip: {e}") from None
            except BadDebugFile as e:
                raise Refused(400, str(e)) from None
        return JSONResponse({})

    @router.post("/api/0/projects/{org}/{slug}/files/difs/assemble/")
    async def assemble(request: Request, org: str, slug: str) -> Response:
        target = project(request, org, slug)
        try:
            files = msgspec.json.decode(await request.body(), type=dict[str, AssembleFile])
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise Refused(400, f"invalid assemble request: {e}") from None
        answers = {}
        for checksum, file in files.items():
            result = await run_in_threadpool(
                symbols.assemble, target.id, checksum, file.name, file.chunks, file.debug_id
            )
            answer: dict[str, Any] = {
                "state": result.state,
                "missingChunks": result.missing_chunks,
                "detail": result.detail,
            }
            if result.file is not None:
                answer["dif"] = dif_json(result.file)
            answers[checksum] = answer
        return JSONResponse(answers)

    @router.post("/api/0/organizations/{org}/artifactbundle/assemble/")
    async def assemble_bundle(request: Request, org: str) -> Response:
        owner = organization(request, org)
        try:
            bundle = msgspec.json.decode(await request.body(), type=AssembleBundle)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise Refused(400, f"invalid assemble request: {e}") from None
        projects = [index.project_by_slug(owner.id, slug) for slug in bundle.projects]
        if not projects or any(p is None for p in projects):
            raise Refused(404, f"unknown projects {bundle.projects!r}")
        result = await run_in_threadpool(
            symbols.assemble_bundle,
            [p.id for p in projects if p],
            bundle.checksum,
            bundle.chunks,
            bundle.version,
            bundle.dist,
        )
        return JSONResponse(
            {"state": result.state, "missingChunks": result.missing_chunks, "detail": result.detail}
        )

    return router


def dif_json(file: DebugFile) -> dict[str, Any]:
    """The debug-information-file object sentry-cli prints on success."""
    return {
        "id": file.checksum,
        "uuid": file.debug_id,
        "debugId": file.debug_id,
        "codeId": file.code_id,
        "objectName": file.name,
        "cpuName": file.arch or "any",
        "symbolType": file.kind,
        "headers": {},
        "size": file.size,
        "sha1": file.checksum,
        "dateCreated": datetime.now(UTC).isoformat(),
        "data": {"features": []},
    }
