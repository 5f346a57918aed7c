"""Profile blobs in object storage (a local directory by default), through obstore.

Writes use "create" mode, so storing a profile that is already there changes nothing:
redelivered messages never duplicate or overwrite a stored profile.  Any other failure of
the store (unreachable, full, refused) is `BackendUnavailable`: the caller retries later,
it never judges the profile by it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError
from obstore.store import from_url

from profd.errors import BackendUnavailable


class BlobNotFound(KeyError):
    pass


class BlobConflict(OSError):
    """The key cannot hold a blob (on a file system: a directory has that path)."""


class BlobStore:
    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        if url.startswith("file://"):
            options.setdefault("mkdir", True)
        self._store = from_url(url, **options)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` unless something is there; True if this call wrote it."""
        with self._unavailable():
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

    def get(self, key: str) -> bytes:
        with self._unavailable():
            try:
                return bytes(obstore.get(self._store, key).bytes())
            except FileNotFoundError:
                raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        with self._unavailable(), contextlib.suppress(FileNotFoundError):
            obstore.delete(self._store, key)

    def check(self) -> None:
        """Raises BackendUnavailable unless the store answers (for readiness)."""
        with self._unavailable():
            obstore.list(self._store, prefix="profd-readiness-check/").collect()

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except (BlobNotFound, BlobConflict, FileNotFoundError):
            raise
        except (BaseError, OSError) as e:
            raise BackendUnavailable("blob store", f"{type(e).__name__}: {e}") from e
