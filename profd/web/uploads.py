"""The upload routes sentry-cli 3.x uses, unchanged: chunk upload and debug-file assembly.

``GET .../chunk-upload/`` tells the CLI how to chunk; ``POST .../chunk-upload/`` receives
gzip chunks named by their SHA-1; ``POST .../files/difs/assemble/`` is polled until each
file is ``ok`` or ``error``, answering ``not_found`` with the chunks still missing.  Every
route needs a bearer token of the organization (``profd tokens create``).

Every bound is one of `UploadLimits` (the store's), advertised and enforced: a body is read
as it arrives and refused (413) as soon as it passes its bound, each chunk is inflated and
written as it arrives, and a chunk name that is not a SHA-1 in lowercase hex is refused (400)
before anything is read or written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from profd.errors import Refused
from profd.services import Services
from profd.store import Organization, Project
from profd.symbols.objects import BadChunkName, chunk_name
from profd.symbols.store import (
    BadDebugFile,
    ChunkWriter,
    DebugFile,
    SymbolStore,
    TooLarge,
    UploadLimits,
)
from profd.web import auth
from profd.web.bodies import bounded_body, read_body

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# A multipart part's headers (sentry-cli sends about 100 bytes).
MAX_PART_HEADERS = 16 * 1024


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
    directory, symbols = services.directory, services.symbols
    limits = symbols.limits

    # Every upload route needs project:releases, as Sentry's do; project:write includes it.
    def organization(request: Request, slug: str) -> Organization:
        return auth.organization(directory, request, slug, scope="project:releases")

    def project(request: Request, org: str, slug: str) -> Project:
        return auth.project(directory, request, org, slug, scope="project:releases")

    @router.get("/api/0/organizations/{org}/chunk-upload/")
    async def chunk_options(request: Request, org: str) -> Response:
        organization(request, org)
        return JSONResponse(
            {
                "url": str(request.url).split("?")[0],
                "chunkSize": limits.chunk_size,
                "chunksPerRequest": limits.chunks_per_request,
                "maxFileSize": limits.max_file_size,
                "maxRequestSize": limits.max_request_size,
                "concurrency": limits.concurrency,
                "hashAlgorithm": "sha1",
                "compression": ["gzip"],
                "accept": ["debug_files", "proguard", "artifact_bundles", "sources"],
            }
        )

    @router.post("/api/0/organizations/{org}/chunk-upload/")
    async def chunk_upload(request: Request, org: str) -> Response:
        organization(request, org)
        kind, options = parse_options_header(request.headers.get("content-type"))
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            raise Refused(400, "chunks are uploaded as multipart/form-data")
        upload = ChunkUpload(symbols)
        parser = MultipartParser(options[b"boundary"], upload.callbacks())
        try:
            async for piece in bounded_body(request, limits.max_request_body):
                await run_in_threadpool(parser.write, piece)
            parser.finalize()
        except FormParserError as e:
            raise Refused(400, f"invalid multipart body: {e}") from None
        except BadChunkName as e:
            raise Refused(400, str(e)) from None
        except BadDebugFile as e:
            raise Refused(400, str(e)) from None
        except TooLarge as e:
            raise Refused(
                413,
                f"{e}: a chunk may inflate to chunkSize ({limits.chunk_size} bytes), the chunks"
                f" of one request to maxRequestSize ({limits.max_request_size} bytes)",
            ) from None
        finally:
            upload.abort()
        return JSONResponse({})

    @router.post("/api/0/projects/{org}/{slug}/files/difs/assemble/")
    async def assemble(request: Request, org: str, slug: str) -> Response:
        target = project(request, org, slug)
        try:
            files = msgspec.json.decode(
                await read_body(request, limits.max_assemble_request), type=dict[str, AssembleFile]
            )
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise Refused(400, f"invalid assemble request: {e}") from None
        for checksum, file in files.items():
            check_names(limits, checksum, file.chunks)
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
            bundle = msgspec.json.decode(
                await read_body(request, limits.max_assemble_request), type=AssembleBundle
            )
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise Refused(400, f"invalid assemble request: {e}") from None
        check_names(limits, bundle.checksum, bundle.chunks)
        projects = [directory.project_by_slug(owner.id, slug) for slug in bundle.projects]
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


class ChunkUpload:
    """python-multipart's callbacks for one chunk-upload body: every ``file`` or ``file_gzip``
    part goes straight into the store as it arrives; other parts are skipped.

    Raises BadChunkName for a part not named by a SHA-1 (as soon as its headers are read),
    TooLarge past chunkSize or maxRequestSize in all, BadDebugFile for a chunk that is not
    its SHA-1 or not valid gzip, and Refused for more than chunksPerRequest chunks.
    """

    def __init__(self, symbols: SymbolStore) -> None:
        self.symbols = symbols
        self.limits = symbols.limits
        self.count = 0
        self.size = 0  # the request's finished chunks, inflated
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._field = bytearray()
        self._value = bytearray()
        self._writer: ChunkWriter | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._header_bytes = {}, 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += self._header(data, start, end)

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += self._header(data, start, end)

    def on_header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition"))
        field = disposition.get(b"name")
        if field not in (b"file", b"file_gzip"):
            return
        filename = disposition.get(b"filename")
        if filename is None:
            raise Refused(400, "a chunk's filename must be its SHA-1; this part has no filename")
        self.count += 1
        if self.count > self.limits.chunks_per_request:
            raise Refused(400, f"more than chunksPerRequest ({self.limits.chunks_per_request}) chunks")
        self._writer = self.symbols.chunk_writer(
            filename.decode("latin-1"),
            gzip=field == b"file_gzip",
            max_size=self.limits.max_request_size - self.size,
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writer is not None:
            self._writer.write(data[start:end])

    def on_part_end(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.finish()
            self.size += writer.size

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def _header(self, data: bytes, start: int, end: int) -> bytes:
        self._header_bytes += end - start
        if self._header_bytes > MAX_PART_HEADERS:
            raise Refused(400, f"a part's headers are larger than {MAX_PART_HEADERS} bytes")
        return data[start:end]


def check_names(limits: UploadLimits, checksum: str, chunks: list[str]) -> None:
    """Refuse (400) an assembly whose file or chunks are not named by SHA-1s, or with more
    chunks than a file of maxFileSize has; before anything is looked up."""
    try:
        chunk_name(checksum)
        for chunk in chunks:
            chunk_name(chunk)
    except BadChunkName as e:
        raise Refused(400, str(e)) from None
    if len(chunks) > limits.max_chunks_per_file:
        raise Refused(
            400,
            f"{len(chunks)} chunks: a file of at most maxFileSize ({limits.max_file_size} bytes)"
            f" has at most {limits.max_chunks_per_file} chunks of chunkSize ({limits.chunk_size} bytes)",
        )


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
