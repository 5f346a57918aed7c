"""The debug-file store: what sentry-cli uploads, assembled, checked and indexed.

sentry-cli sends files in chunks named by their SHA-1, then asks for each file to be
assembled from its chunks.  A file is assembled only when every chunk is present; it is
checked against its own SHA-1, recognised (ProGuard mapping, or an object file symbolic can
read) and only then written and indexed, so nothing half-written is ever visible.  Files are
indexed per project by the id a profile refers to them with: the ProGuard UUID or the
debug id.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import tempfile
import threading
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

# The namespace ProGuard UUIDs are derived in: uuid5(uuid5(DNS, "guardsquare.com"), text).
PROGUARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "guardsquare.com")

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
    pass


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
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024


class SymbolStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.chunks = root / "chunks"
        self.files = root / "files"
        self.chunks.mkdir(parents=True, exist_ok=True)
        self.files.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(root / "symbols.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- chunks ----------------------------------------------------------------------------

    def put_chunk(self, checksum: str, data: bytes) -> None:
        """Keep one uploaded chunk; its name must be its SHA-1."""
        if hashlib.sha1(data).hexdigest() != checksum.lower():
            raise BadDebugFile(f"chunk {checksum} does not match its SHA-1")
        _write_atomically(self.chunks / checksum.lower(), data)

    def missing_chunks(self, checksums: list[str]) -> list[str]:
        return [c for c in checksums if not (self.chunks / c.lower()).exists()]

    # -- files -----------------------------------------------------------------------------

    def assemble(
        self, project_id: int, checksum: str, name: str, chunks: list[str], debug_id: str | None
    ) -> AssembleResult:
        """Build the file from its chunks, check and index it; idempotent for a checksum."""
        existing = self.by_checksum(project_id, checksum)
        if existing is not None:
            return AssembleResult("ok", [], file=existing)
        missing = self.missing_chunks(chunks)
        if missing:
            return AssembleResult("not_found", missing)
        try:
            data = self._joined(chunks, checksum)
            kind, file_debug_id, code_id, arch = identify(name, data)
        except BadDebugFile as e:
            self._fail(project_id, checksum, str(e))
            return AssembleResult("error", [], detail=str(e))
        record = DebugFile(project_id, checksum.lower(), name, kind, file_debug_id, code_id, arch, len(data))
        _write_atomically(self.files / record.checksum, data)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO debug_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    project_id,
                    record.checksum,
                    name,
                    kind,
                    record.debug_id,
                    code_id,
                    arch,
                    len(data),
                    time.time(),
                ),
            )
        return AssembleResult("ok", [], file=record)

    def assemble_bundle(
        self, project_ids: list[int], checksum: str, chunks: list[str], release: str | None, dist: str | None
    ) -> AssembleResult:
        """An artifact bundle (sentry-cli sourcemaps upload): a zip with a manifest."""
        missing = self.missing_chunks(chunks)
        if missing:
            return AssembleResult("not_found", missing)
        try:
            data = self._joined(chunks, checksum)
            manifest = read_bundle_manifest(data)
        except BadDebugFile as e:
            for project_id in project_ids:
                self._fail(project_id, checksum, str(e))
            return AssembleResult("error", [], detail=str(e))
        release = release or manifest.get("release") or None
        dist = dist or manifest.get("dist") or None
        _write_atomically(self.files / f"{checksum.lower()}.zip", data)
        rows = []
        for path, entry in (manifest.get("files") or {}).items():
            headers = {str(k).lower(): v for k, v in (entry.get("headers") or {}).items()}
            debug_id = headers.get("debug-id")
            for project_id in project_ids:
                rows.append(
                    (
                        project_id,
                        checksum.lower(),
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
        with zipfile.ZipFile(self.files / f"{file.bundle}.zip") as bundle:
            return bundle.read(file.path)

    def _joined(self, chunks: list[str], checksum: str) -> bytes:
        """The uploaded file from its chunks, if it is the file its checksum names."""
        data = b"".join((self.chunks / c.lower()).read_bytes() for c in chunks)
        if hashlib.sha1(data).hexdigest() != checksum.lower():
            raise BadDebugFile("the assembled file does not match its checksum")
        return data

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
        return self.files / file.checksum

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


def identify(name: str, data: bytes) -> tuple[str, str, str | None, str | None]:
    """(kind, debug id, code id, arch) of an uploaded file, or BadDebugFile."""
    if name.startswith("/proguard/") or name.endswith(".txt"):
        return "proguard", proguard_uuid(data), None, None
    from symbolic import debuginfo

    try:
        archive = debuginfo.Archive.from_bytes(data)
        objects = list(archive.iter_objects())
    except Exception as e:  # symbolic raises its own error types for every unreadable file
        raise BadDebugFile(f"not a debug file symbolic can read: {e}") from None
    if not objects:
        raise BadDebugFile("the file contains no object")
    first = objects[0]
    return str(first.file_format), normalize_id(str(first.debug_id)), first.code_id, str(first.arch)


def read_bundle_manifest(data: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, Any]:
    """The bundle's manifest, after checking the zip is safe to read (no zip bomb)."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(data))
        entries = bundle.infolist()
        if len(entries) > MAX_BUNDLE_FILES:
            raise BadDebugFile(f"the bundle has {len(entries)} files, more than {MAX_BUNDLE_FILES}")
        if sum(entry.file_size for entry in entries) > max_bytes:
            raise BadDebugFile(f"the bundle would inflate beyond {max_bytes} bytes")
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
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise BadDebugFile("a ProGuard mapping is text") from None
    if " -> " not in text:
        raise BadDebugFile("not a ProGuard mapping (no 'class -> obfuscated:' line)")
    return str(uuid.uuid5(PROGUARD_NAMESPACE, text))


def normalize_id(value: str) -> str:
    try:
        return str(uuid.UUID(value[:36]))
    except ValueError:
        return value.lower()


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as temporary:
        temporary.write(data)
    os.replace(temporary.name, path)
