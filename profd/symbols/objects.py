"""Where the debug-file store keeps its files: in object storage (profd.store.blobs), which
every node sees, with a local cache for what symbolic and zipfile must open by path.

Keys, each built from a name `chunk_name` checked (a SHA-1 in lowercase hex), so no client
input ever reaches a key or a path unchecked:

    chunks/<sha1>                 an uploaded chunk, until its file is assembled
    files/<sha1>                  a debug file or ProGuard mapping
    files/<sha1>.zip              an artifact bundle (sentry-cli sourcemaps upload)
    files/<sha1>.v<N>.symcache    the symcache (format N) built from files/<sha1>

Every key names its content (the symcache: its debug file's, and symbolic's format), so a
write that replaces an object writes the same bytes, and a cached copy is never stale.  A
file:// store (the default) is its own cache: its files are opened where they are.  Elsewhere
the cache is a directory of copies, filled when a file is first needed; files are written
to the store first and kept in the cache after, so another node finds everything it needs.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from profd.store.blobs import BlobNotFound, BlobStore

# Files being written (chunks, assembled files, cache copies) are named so until complete.
PARTIAL_PREFIX = ".partial-"
# Files are read and written in blocks this big: nothing holds a whole file.
BLOCK_SIZE = 1024 * 1024
_NAME = re.compile(r"[0-9a-f]{40}")


class BadChunkName(ValueError):
    """A chunk or file named by anything but a SHA-1 in lowercase hex: refused (HTTP 400)
    before any key or path is built from it."""


class UnreadableFile(ValueError):
    """A file in a local store that is not a regular file (a symlink, a directory)."""


def chunk_name(checksum: object) -> str:
    """`checksum` as a name, if it is a SHA-1 in lowercase hex (what sentry-cli sends)."""
    if not isinstance(checksum, str) or _NAME.fullmatch(checksum) is None:
        shown = repr(checksum)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise BadChunkName(f"chunks are named by their SHA-1 in 40 lowercase hex characters, not {shown}")
    return checksum


def chunk_key(checksum: str) -> str:
    return f"chunks/{chunk_name(checksum)}"


def file_key(checksum: str, suffix: str = "") -> str:
    """A debug file's key, or with `suffix` (".zip", ".v9.symcache") a file named after it."""
    assert suffix in ("", ".zip") or re.fullmatch(r"\.v\d+\.symcache", suffix), suffix
    return f"files/{chunk_name(checksum)}{suffix}"


class SymbolObjects:
    def __init__(self, blobs: BlobStore, cache: Path) -> None:
        self.blobs = blobs
        self.cache = cache
        self.cache.mkdir(parents=True, exist_ok=True)

    def temporary(self) -> IO[bytes]:
        """A file to write a chunk or file into before `keep` stores it (closed, not deleted)."""
        return tempfile.NamedTemporaryFile(dir=self.cache, prefix=PARTIAL_PREFIX, delete=False)

    def keep(self, key: str, temporary: Path, *, cache: bool = True) -> None:
        """Store the finished file `temporary` under `key`; the temporary file is gone after.

        It stays in this node's cache (when `cache` and the store is not local), since the
        node that assembled a file is likely to be asked for it."""
        try:
            self.blobs.put_file(key, temporary)
            if cache and self.blobs.local_path(key) is None:
                target = self.cache / key
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.blobs.exists(key)

    def blocks(self, key: str) -> Iterator[bytes]:
        """The object's bytes block by block; FileNotFoundError when there is none, and
        UnreadableFile for a local one that is not a regular file."""
        local = self.blobs.local_path(key)
        if local is not None:
            yield from file_blocks(local)
            return
        try:
            yield from self.blobs.blocks(key)
        except BlobNotFound:
            raise FileNotFoundError(key) from None

    def path(self, key: str) -> Path:
        """A local file with the object's bytes: in a local store the object itself, else
        this node's copy, fetched on first use.  FileNotFoundError when there is none."""
        local = self.blobs.local_path(key)
        if local is not None:
            if not stat.S_ISREG(os.lstat(local).st_mode):
                raise UnreadableFile(f"{local.name} is not a regular file")
            return local
        target = self.cache / key
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.temporary() as out:
            try:
                for block in self.blocks(key):
                    out.write(block)
            except BaseException:
                out.close()
                Path(out.name).unlink(missing_ok=True)
                raise
        # Two threads or nodes fetching the same file write the same bytes: either one wins.
        os.replace(out.name, target)
        return target

    def collect_garbage(self, now: float | None = None, max_age: float = 86400) -> int:
        """Remove chunks older than `max_age` seconds, and what an interrupted write left in
        the cache (or, from earlier versions, beside a local store's files).

        A chunk is only needed until its file is assembled, which sentry-cli asks for right
        after uploading it.  Returns how many were removed.
        """
        now = time.time() if now is None else now
        before = datetime.fromtimestamp(now - max_age, UTC)
        removed = 0
        for key in self.blobs.modified_before("chunks/", before):
            self.blobs.delete(key)
            removed += 1
        leftovers = [self.cache]
        root = self.blobs.local_path("files")
        if root is not None:
            leftovers.append(root)
        for directory in leftovers:
            removed += _remove_leftovers(directory, now - max_age)
        return removed


def _remove_leftovers(directory: Path, before: float) -> int:
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        # "tmp": what writes left before they were named PARTIAL_PREFIX.
        if not entry.name.startswith((PARTIAL_PREFIX, "tmp")):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < before:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def file_blocks(path: Path) -> Iterator[bytes]:
    """A regular file's contents, block by block; never a symlink, device or directory."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as e:  # a symlink (ELOOP), or unreadable
        raise UnreadableFile(f"{path.name} cannot be read: {e.strerror}") from None
    with open(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFile(f"{path.name} is not a regular file")
        while block := source.read(BLOCK_SIZE):
            yield block
