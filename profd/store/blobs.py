"""Profile blobs in object storage (a local directory by default), through obstore.

Writes use "create" mode, so storing a profile that is already there changes nothing:
redelivered messages never duplicate or overwrite a stored profile.
"""

from __future__ import annotations

import contextlib
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import from_url


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
        try:
            return bytes(obstore.get(self._store, key).bytes())
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            obstore.delete(self._store, key)
