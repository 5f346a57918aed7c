"""Objects in object storage (a local directory by default), through obstore: profile blobs,
and the files of the debug-file store (profd.symbols.objects).

`put_if_absent` writes create-if-absent, so storing a profile that is already there changes
nothing: redelivered messages never duplicate or overwrite a stored profile.  It asks first
(HEAD) and then puts with obstore's ``mode="create"``, which on S3 is ``If-None-Match: *``.
Not every S3-compatible server honours that header (s3rver ignores it and overwrites; AWS,
MinIO and local files refuse), so the HEAD is what keeps a redelivered message from
replacing its profile there.  Only two writers racing between HEAD and PUT can both write,
and they write the same thing: a profile's blob is a function of its message (and of the
debug files uploaded at the time), so either copy is the profile, and one copy remains.

Any other failure of the store (unreachable, full, refused, no such bucket) is
`BackendUnavailable`: the caller retries later, it never judges the profile by it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError
from obstore.store import from_url

from profd.errors import BackendUnavailable

# Objects are read in pieces about this big: a reader never holds a whole debug file.
STREAM_BLOCK = 1024 * 1024


class BlobNotFound(KeyError):
    pass


class BlobConflict(OSError):
    """The key cannot hold a blob (on a file system: a directory has that path)."""


class BlobStore:
    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        # A file:// store's objects are files: readers that need a path (symbolic, zipfile)
        # open them where they are instead of through a copy.
        self.root = Path(unquote(urlsplit(url).path)) if url.startswith("file://") else None
        if self.root is not None:
            options.setdefault("mkdir", True)
        self._store = from_url(url, **options)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` unless something is there; True if this call wrote it."""
        with self._unavailable():
            if self.exists(key):
                return False
            try:
                obstore.put(self._store, key, data, mode="create")
            except AlreadyExistsError:
                # On a file system a directory of that name also "exists": that is no copy.
                try:
                    obstore.head(self._store, key)
                except FileNotFoundError:
                    raise BlobConflict(f"{key} is taken by something that is not a blob") from None
                return False
        return True

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key`, streamed (multipart on S3), replacing what is
        there: for keys named by their content's hash, where any copy is the same bytes."""
        with self._unavailable():
            obstore.put(self._store, key, path)

    def get(self, key: str) -> bytes:
        with self._unavailable():
            try:
                return bytes(obstore.get(self._store, key).bytes())
            except FileNotFoundError:
                raise BlobNotFound(key) from None

    def blocks(self, key: str) -> Iterator[bytes]:
        """The object's bytes as they arrive, never the whole of it at once; BlobNotFound
        when there is none."""
        with self._unavailable():
            try:
                result = obstore.get(self._store, key)
            except FileNotFoundError:
                raise BlobNotFound(key) from None
            for block in result.stream(min_chunk_size=STREAM_BLOCK):
                yield bytes(block)

    def exists(self, key: str) -> bool:
        """Whether `key` holds an object (on a file system: a regular file, not a symlink)."""
        path = self.local_path(key)
        if path is not None:
            try:
                return stat.S_ISREG(os.lstat(path).st_mode)
            except FileNotFoundError:
                return False
        with self._unavailable():
            try:
                obstore.head(self._store, key)
            except FileNotFoundError:
                return False
        return True

    def local_path(self, key: str) -> Path | None:
        """Where a file:// store keeps `key` (None for any other store).  Keys are built from
        checked names (hashes, ids): the path stays under the store's root."""
        return None if self.root is None else self.root / key

    def modified_before(self, prefix: str, before: datetime) -> list[str]:
        """The keys under `prefix` last written before `before`."""
        with self._unavailable():
            return [
                meta["path"]
                for batch in obstore.list(self._store, prefix=prefix)
                for meta in batch
                if meta["last_modified"] < before
            ]

    def delete(self, key: str) -> None:
        with self._unavailable(), contextlib.suppress(FileNotFoundError):
            obstore.delete(self._store, key)

    def check(self) -> None:
        """Raises BackendUnavailable unless the store answers (for readiness)."""
        with self._unavailable():
            obstore.list(self._store, prefix="profd-readiness-check/").collect()

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        # A "not found" that reaches here is the store's (no such bucket), not a key's:
        # callers turn a missing key into their own answer before.
        try:
            yield
        except (BlobNotFound, BlobConflict):
            raise
        except (BaseError, OSError) as e:
            raise BackendUnavailable("blob store", f"{type(e).__name__}: {e}") from e
