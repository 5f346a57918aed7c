"""The debug-file store: what sentry-cli uploads, assembled, checked and indexed.

sentry-cli sends files in chunks named by their SHA-1, then asks for each file to be
assembled from its chunks.  A chunk's name is the only client input that ever becomes part of
a key or path, and only once it is exactly 40 lowercase hex characters (`chunk_name`).  Chunks
are inflated, hashed and written as they arrive, never past `UploadLimits.chunk_size`, and
stored (profd.symbols.objects: object storage every node sees) once they match their name.  A
file is assembled only when every chunk is present: streamed chunk by chunk into a temporary
file while hashed, checked against its own SHA-1, recognised (ProGuard mapping, or an object
file symbolic can read) and only then stored and indexed, so nothing half-written is ever
visible.  Files are indexed per project by the id a profile refers to them with: the ProGuard
UUID or the debug id; the index is a few tables in the directory's SQLite file, so every node
sharing the directory finds them.  Chunks are only needed until their file is assembled:
`collect_garbage` removes them, and what an interrupted write left, after a day.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import sqlite3
import threading
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from profd.formats.encoding import Decoder
from profd.formats.errors import FormatError
from profd.symbols.objects import (
    SymbolObjects,
    UnreadableFile,
    chunk_key,
    chunk_name,
    file_blocks,
    file_key,
)

# The namespace ProGuard UUIDs are derived in: uuid5(uuid5(DNS, "guardsquare.com"), text).
PROGUARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "guardsquare.com")

MIB = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """Every bound on what sentry-cli uploads: advertised by ``GET .../chunk-upload/`` and enforced."""

    # One chunk, after gzip inflation (sentry-cli cuts files into chunks this big).
    chunk_size: int = 8 * MIB
    # Chunks in one upload request.
    chunks_per_request: int = 64
    # The chunks of one upload request together, inflated, as sentry-cli batches them.
    max_request_size: int = 32 * MIB
    # One assembled file.
    max_file_size: int = 2048 * MIB
    # The JSON body of one assemble request (sentry-cli sends a few KB).
    max_assemble_request: int = 1 * MIB
    # Parallel upload requests sentry-cli is told it may make.
    concurrency: int = 4

    @property
    def max_chunks_per_file(self) -> int:
        return -(-self.max_file_size // self.chunk_size)

    @property
    def max_request_body(self) -> int:
        """The bytes one chunk-upload request body may carry.

        sentry-cli batches chunks by their inflated size, so an incompressible batch grows in
        gzip (deflate's stored blocks: 5 bytes per 16 KiB at worst, plus an 18-byte wrapper)
        and each multipart part adds its own headers: allowed for, at most 1/1024 and 1 KiB a
        chunk beyond maxRequestSize.
        """
        return self.max_request_size + self.max_request_size // 1024 + self.chunks_per_request * 1024


_SCHEMA = """
CREATE TABLE IF NOT EXISTS debug_files (
    project_id INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    debug_id TEXT NOT NULL,
    code_id TEXT,
    arch TEXT,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (project_id, checksum)
);
CREATE INDEX IF NOT EXISTS debug_files_by_id ON debug_files (project_id, debug_id);
CREATE TABLE IF NOT EXISTS artifact_files (
    project_id INTEGER NOT NULL,
    bundle TEXT NOT NULL,
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    debug_id TEXT,
    release TEXT,
    dist TEXT,
    sourcemap TEXT,
    PRIMARY KEY (project_id, bundle, path)
);
CREATE INDEX IF NOT EXISTS artifacts_by_debug_id ON artifact_files (project_id, debug_id, type);
CREATE INDEX IF NOT EXISTS artifacts_by_release ON artifact_files (project_id, release, dist, url);
CREATE TABLE IF NOT EXISTS failures (
    project_id INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (project_id, checksum)
);
"""


class DebugFile(msgspec.Struct, frozen=True):
    project_id: int
    checksum: str
    name: str
    kind: str  # "proguard", or the object format: "elf", "macho", "pe", "pdb", "breakpad", "wasm"
    debug_id: str
    code_id: str | None
    arch: str | None
    size: int


@dataclass(frozen=True)
class AssembleResult:
    state: str  # "not_found" (chunks missing), "ok" or "error"
    missing_chunks: list[str]
    detail: str | None = None
    file: DebugFile | None = None


class BadDebugFile(ValueError):
    """What was uploaded is not what it claims to be: the upload fails (``error``, HTTP 400)."""


class TooLarge(ValueError):
    """An upload past one of `UploadLimits` (HTTP 413)."""


class ArtifactFile(msgspec.Struct, frozen=True):
    """One file of an uploaded source bundle: a minified source or its source map."""

    project_id: int
    bundle: str
    path: str
    type: str  # "minified_source" or "source_map"
    url: str  # "~/app.min.js": "~" stands for any scheme and host
    debug_id: str | None
    release: str | None
    dist: str | None
    sourcemap: str | None  # the map a minified source names


# Bundles are zip files: refuse ones that would inflate into more than this.
MAX_BUNDLE_FILES = 20_000
MAX_BUNDLE_BYTES = 1024 * MIB
MAX_MANIFEST_BYTES = 64 * MIB


class ChunkWriter:
    """One chunk as it arrives: inflated if gzip (never past `max_size`), hashed and written to
    a temporary file, stored under its name only if that name is its SHA-1.

    Call `finish` when the chunk is complete, or `abort`; both remove the temporary file.
    """

    def __init__(self, objects: SymbolObjects, checksum: str, max_size: int, *, gzip: bool) -> None:
        self.name = chunk_name(checksum)
        self.max_size = max_size
        self.size = 0
        self._objects = objects
        self._sha1 = hashlib.sha1()
        self._gzip = Decoder("gzip", max_size) if gzip else None
        # Open across many writes, closed by finish or abort.
        self._file: IO[bytes] | None = objects.temporary()

    def write(self, data: bytes) -> None:
        try:
            self._take(data if self._gzip is None else self._gzip.decode(data))
        except FormatError as e:
            self.abort()
            if e.reason == "too_large":
                raise TooLarge(f"chunk {self.name} is larger than {self.max_size} bytes") from None
            raise BadDebugFile(f"chunk {self.name} is not valid gzip: {e.message}") from None
        except BaseException:
            self.abort()
            raise

    def finish(self) -> None:
        try:
            if self._gzip is not None:
                try:
                    self._gzip.finish()
                except FormatError:
                    raise BadDebugFile(
                        f"chunk {self.name} is not valid gzip: it ends in the middle"
                    ) from None
            if self._sha1.hexdigest() != self.name:
                raise BadDebugFile(f"chunk {self.name} does not match its SHA-1")
            assert self._file is not None, "the chunk was aborted"
            self._file.close()
            temporary, self._file = Path(self._file.name), None
            # Assembly reads chunks from the store, wherever it runs: no local copy is kept.
            self._objects.keep(chunk_key(self.name), temporary, cache=False)
        finally:
            self.abort()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            Path(self._file.name).unlink(missing_ok=True)
            self._file = None

    def _take(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_size:
            raise TooLarge(f"chunk {self.name} is larger than {self.max_size} bytes")
        self._sha1.update(data)
        assert self._file is not None, "the chunk was aborted"
        self._file.write(data)


class SymbolStore:
    def __init__(self, objects: SymbolObjects, index: Path, limits: UploadLimits | None = None) -> None:
        """Files in `objects`; their index in the SQLite file `index` (the directory's)."""
        self.objects = objects
        self.limits = limits or UploadLimits()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(index, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def adopt_index(self, legacy: Path) -> None:
        """Take in the rows of an index kept apart by earlier versions (<data_dir>/symbols/
        symbols.sqlite3), then set that file aside, so an upgraded node finds what it had."""
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    for table in ("debug_files", "artifact_files", "failures"):
                        self._db.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM legacy.{table}")
            finally:
                self._db.execute("DETACH DATABASE legacy")
        legacy.rename(legacy.with_name(legacy.name + ".adopted"))

    # -- chunks ----------------------------------------------------------------------------

    def chunk_writer(self, checksum: str, *, gzip: bool = False, max_size: int | None = None) -> ChunkWriter:
        """A chunk to write as it arrives; BadChunkName before anything is created."""
        limit = self.limits.chunk_size if max_size is None else min(max_size, self.limits.chunk_size)
        return ChunkWriter(self.objects, checksum, limit, gzip=gzip)

    def put_chunk(self, checksum: str, data: bytes, *, gzip: bool = False) -> None:
        """Keep one uploaded chunk; its name must be its SHA-1."""
        writer = self.chunk_writer(checksum, gzip=gzip)
        writer.write(data)
        writer.finish()

    def missing_chunks(self, checksums: list[str]) -> list[str]:
        """The chunks not uploaded yet."""
        names = [chunk_name(c) for c in checksums]
        return [name for name in names if not self.objects.exists(chunk_key(name))]

    def collect_garbage(self, now: float | None = None, max_age: float = 86400) -> int:
        """Remove chunks, and files an interrupted write left, older than `max_age` seconds.

        A chunk is only needed until its file is assembled, which sentry-cli asks for right
        after uploading it.  Returns how many were removed.
        """
        return self.objects.collect_garbage(now, max_age)

    # -- files -----------------------------------------------------------------------------

    def assemble(
        self, project_id: int, checksum: str, name: str, chunks: list[str], debug_id: str | None
    ) -> AssembleResult:
        """Build the file from its chunks, check and index it; idempotent for a checksum."""
        checksum, chunks = self._names(checksum, chunks)
        existing = self.by_checksum(project_id, checksum)
        if existing is not None:
            return AssembleResult("ok", [], file=existing)
        missing = self.missing_chunks(chunks)
        if missing:
            return AssembleResult("not_found", missing)
        try:
            with self._assembled(chunks, checksum) as temporary:
                kind, file_debug_id, code_id, arch = identify(name, temporary)
                size = temporary.stat().st_size
                self.objects.keep(file_key(checksum), temporary)
        except FileNotFoundError:  # a chunk collected since it was found
            return AssembleResult("not_found", self.missing_chunks(chunks))
        except BadDebugFile as e:
            self._fail(project_id, checksum, str(e))
            return AssembleResult("error", [], detail=str(e))
        record = DebugFile(project_id, checksum, name, kind, file_debug_id, code_id, arch, size)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO debug_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project_id, checksum, name, kind, record.debug_id, code_id, arch, size, time.time()),
            )
        return AssembleResult("ok", [], file=record)

    def assemble_bundle(
        self, project_ids: list[int], checksum: str, chunks: list[str], release: str | None, dist: str | None
    ) -> AssembleResult:
        """An artifact bundle (sentry-cli sourcemaps upload): a zip with a manifest."""
        checksum, chunks = self._names(checksum, chunks)
        missing = self.missing_chunks(chunks)
        if missing:
            return AssembleResult("not_found", missing)
        try:
            with self._assembled(chunks, checksum) as temporary:
                manifest = read_bundle_manifest(temporary)
                self.objects.keep(file_key(checksum, ".zip"), temporary)
        except FileNotFoundError:  # a chunk collected since it was found
            return AssembleResult("not_found", self.missing_chunks(chunks))
        except BadDebugFile as e:
            for project_id in project_ids:
                self._fail(project_id, checksum, str(e))
            return AssembleResult("error", [], detail=str(e))
        release = release or manifest.get("release") or None
        dist = dist or manifest.get("dist") or None
        rows = []
        for path, entry in (manifest.get("files") or {}).items():
            headers = {str(k).lower(): v for k, v in (entry.get("headers") or {}).items()}
            debug_id = headers.get("debug-id")
            for project_id in project_ids:
                rows.append(
                    (
                        project_id,
                        checksum,
                        path,
                        str(entry.get("type") or ""),
                        str(entry.get("url") or ""),
                        normalize_id(debug_id) if debug_id else None,
                        release,
                        dist,
                        headers.get("sourcemap"),
                    )
                )
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO artifact_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return AssembleResult("ok", [])

    def artifact(
        self,
        project_id: int,
        file_type: str,
        *,
        debug_id: str | None = None,
        release: str | None = None,
        dist: str | None = None,
        url: str | None = None,
    ) -> ArtifactFile | None:
        """A bundle file by debug id, else by release (and dist) and the frame's URL."""
        columns = "project_id, bundle, path, type, url, debug_id, release, dist, sourcemap"
        with self._lock:
            if debug_id:
                row = self._db.execute(
                    f"SELECT {columns} FROM artifact_files WHERE project_id = ? AND debug_id = ? AND type = ?",
                    (project_id, normalize_id(debug_id), file_type),
                ).fetchone()
                if row:
                    return ArtifactFile(*row)
            if release and url:
                candidates = self._db.execute(
                    f"SELECT {columns} FROM artifact_files WHERE project_id = ? AND release = ? AND type = ?"
                    " AND COALESCE(dist, '') = ?",
                    (project_id, release, file_type, dist or ""),
                ).fetchall()
                for row in candidates:
                    if url_matches(str(row[4]), url):
                        return ArtifactFile(*row)
        return None

    def artifact_bytes(self, file: ArtifactFile) -> bytes:
        with zipfile.ZipFile(self.objects.path(file_key(file.bundle, ".zip"))) as bundle:
            return bundle.read(file.path)

    def _names(self, checksum: str, chunks: list[str]) -> tuple[str, list[str]]:
        """The file's and its chunks' names, all checked before anything is touched."""
        return chunk_name(checksum), [chunk_name(c) for c in chunks]

    def _assembled(self, chunks: list[str], checksum: str) -> _Assembly:
        return _Assembly(self.objects, chunks, checksum, self.limits.max_file_size)

    def failure(self, project_id: int, checksum: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT detail FROM failures WHERE project_id = ? AND checksum = ?",
                (project_id, checksum.lower()),
            ).fetchone()
        return str(row[0]) if row else None

    def by_checksum(self, project_id: int, checksum: str) -> DebugFile | None:
        return self._one("checksum = ?", (project_id, checksum.lower()))

    def by_debug_id(self, project_id: int, debug_id: str) -> DebugFile | None:
        return self._one("debug_id = ?", (project_id, normalize_id(debug_id)))

    def path(self, file: DebugFile) -> Path:
        """The debug file, on this node's disk (fetched from the store on first use)."""
        return self.objects.path(file_key(file.checksum))

    def symcache(self, file: DebugFile, version: int) -> Path | None:
        """The symcache (format `version`) a node built from `file` and stored, if any."""
        key = file_key(file.checksum, f".v{version}.symcache")
        with contextlib.suppress(FileNotFoundError):
            return self.objects.path(key)
        return None

    def keep_symcache(self, file: DebugFile, version: int, temporary: Path) -> Path:
        """Store a symcache built from `file` beside it, for every node; its local path."""
        key = file_key(file.checksum, f".v{version}.symcache")
        self.objects.keep(key, temporary)
        return self.objects.path(key)

    def _one(self, where: str, params: tuple[object, ...]) -> DebugFile | None:
        with self._lock:
            row = self._db.execute(
                "SELECT project_id, checksum, name, kind, debug_id, code_id, arch, size FROM debug_files"
                f" WHERE project_id = ? AND {where} ORDER BY created DESC LIMIT 1",
                params,
            ).fetchone()
        return DebugFile(*row) if row else None

    def _fail(self, project_id: int, checksum: str, detail: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (project_id, checksum.lower(), detail)
            )


class _Assembly:
    """``with``: the file its chunks make, streamed into a temporary file and checked against
    its SHA-1; the temporary file is gone afterwards unless stored.

    Raises BadDebugFile for a file larger than `max_size` or not matching `checksum`, and
    FileNotFoundError for a chunk that is gone.
    """

    def __init__(self, objects: SymbolObjects, chunks: list[str], checksum: str, max_size: int):
        self._objects = objects
        self._sources = [chunk_key(c) for c in chunks]
        self._checksum = chunk_name(checksum)
        self._max_size = max_size
        self._path: Path | None = None

    def __enter__(self) -> Path:
        digest, size = hashlib.sha1(), 0
        with self._objects.temporary() as out:
            self._path = Path(out.name)
            try:
                for source in self._sources:
                    for block in _blocks(self._objects.blocks(source)):
                        size += len(block)
                        if size > self._max_size:
                            raise BadDebugFile(f"the assembled file is larger than {self._max_size} bytes")
                        digest.update(block)
                        out.write(block)
            except BaseException:
                self._remove()
                raise
        if digest.hexdigest() != self._checksum:
            self._remove()
            raise BadDebugFile("the assembled file does not match its checksum")
        return self._path

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)


def _blocks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """`blocks`, with a local file that is not a regular one (a symlink) a BadDebugFile."""
    try:
        yield from blocks
    except UnreadableFile as e:
        raise BadDebugFile(str(e)) from None


def identify(name: str, path: Path) -> tuple[str, str, str | None, str | None]:
    """(kind, debug id, code id, arch) of an uploaded file, or BadDebugFile."""
    if name.startswith("/proguard/") or name.endswith(".txt"):
        return "proguard", _proguard_uuid(_blocks(file_blocks(path))), None, None
    from symbolic import debuginfo

    try:
        archive = debuginfo.Archive.open(str(path))  # memory-mapped, not read
        objects = list(archive.iter_objects())
    except Exception as e:  # symbolic raises its own error types for every unreadable file
        raise BadDebugFile(f"not a debug file symbolic can read: {e}") from None
    if not objects:
        raise BadDebugFile("the file contains no object")
    first = objects[0]
    return str(first.file_format), normalize_id(str(first.debug_id)), first.code_id, str(first.arch)


def read_bundle_manifest(path: Path, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, Any]:
    """The bundle's manifest, after checking the zip is safe to read (no zip bomb)."""
    try:
        with zipfile.ZipFile(path) as bundle:
            entries = bundle.infolist()
            if len(entries) > MAX_BUNDLE_FILES:
                raise BadDebugFile(f"the bundle has {len(entries)} files, more than {MAX_BUNDLE_FILES}")
            if sum(entry.file_size for entry in entries) > max_bytes:
                raise BadDebugFile(f"the bundle would inflate beyond {max_bytes} bytes")
            if bundle.getinfo("manifest.json").file_size > MAX_MANIFEST_BYTES:
                raise BadDebugFile(f"the bundle's manifest is larger than {MAX_MANIFEST_BYTES} bytes")
            manifest = msgspec.json.decode(bundle.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, msgspec.DecodeError, UnicodeDecodeError, zlib.error) as e:
        raise BadDebugFile(f"not an artifact bundle: {e}") from None
    if not isinstance(manifest, dict):
        raise BadDebugFile("the bundle's manifest is not an object")
    return manifest


def url_matches(pattern: str, url: str) -> bool:
    """``~/app.min.js`` matches any scheme and host with that path; otherwise exact."""
    if not pattern.startswith("~"):
        return pattern == url
    path = url.split("://", 1)[1] if "://" in url else url
    path = "/" + path.split("/", 1)[1] if "://" in url and "/" in path else path
    return path.endswith(pattern[1:]) or url.endswith(pattern[1:])


def proguard_uuid(data: bytes) -> str:
    """The UUID sentry-cli and the Android Gradle plugin give a mapping: derived from its text."""
    return _proguard_uuid([data])


def _proguard_uuid(blocks: Iterable[bytes]) -> str:
    """uuid5(PROGUARD_NAMESPACE, text) of a text that arrives block by block: uuid5 is the
    SHA-1 of the namespace and the text's UTF-8, which is hashed as it is checked."""
    digest = hashlib.sha1(PROGUARD_NAMESPACE.bytes)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    arrow, tail = False, b""
    try:
        for block in blocks:
            utf8.decode(block)
            arrow = arrow or b" -> " in tail + block[:3] or b" -> " in block
            tail = block[-3:]
            digest.update(block)
        utf8.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BadDebugFile("a ProGuard mapping is text") from None
    if not arrow:
        raise BadDebugFile("not a ProGuard mapping (no 'class -> obfuscated:' line)")
    return str(uuid.UUID(bytes=digest.digest()[:16], version=5))


def normalize_id(value: str) -> str:
    try:
        return str(uuid.UUID(value[:36]))
    except ValueError:
        return value.lower()
