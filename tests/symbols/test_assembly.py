"""Chunks in, files out: names checked before any path exists, chunks and files streamed
within their bounds, and what is left over collected after a day."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid
import zlib
from pathlib import Path

import _brotli
import pytest
from symbolic import debuginfo

from profd.symbols.store import (
    BLOCK_SIZE,
    PARTIAL_PREFIX,
    PROGUARD_NAMESPACE,
    BadChunkName,
    BadDebugFile,
    SymbolStore,
    TooLarge,
    UploadLimits,
    chunk_name,
    identify,
)

SMALL = UploadLimits(chunk_size=256 * 1024, max_file_size=64 * 1024 * 1024)
DATA = b"a chunk" * 100
SHA1 = hashlib.sha1(DATA).hexdigest()
BAD_NAMES = [
    "/etc/passwd",
    "/dev/zero",
    "../" + SHA1[3:],
    "..",
    ".",
    "",
    "chunks",
    "..%2F..%2Fetc%2Fpasswd",
    "g" * 40,
    SHA1.upper(),
    SHA1[:39],
    SHA1 + "0",
    SHA1 + "\n",
    "\uff10" * 40,
]


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "sqlite3" not in p.name}


def put(store: SymbolStore, data: bytes, size: int) -> list[str]:
    """`data` uploaded in chunks of `size`; their names."""
    names = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        names.append(hashlib.sha1(chunk).hexdigest())
        store.put_chunk(names[-1], zlib.compress(chunk, wbits=31), gzip=True)
    return names


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_name_that_is_not_a_lowercase_sha1_touches_nothing(tmp_path: Path, name: str) -> None:
    store = SymbolStore(tmp_path)
    store.put_chunk(SHA1, DATA)
    before = listing(tmp_path)
    with pytest.raises(BadChunkName, match="40 lowercase hex characters"):
        chunk_name(name)
    calls = [
        lambda: store.put_chunk(name, DATA),
        lambda: store.chunk_writer(name),
        lambda: store.missing_chunks([SHA1, name]),
        lambda: store.assemble(1, SHA1, "prog", [name], None),
        lambda: store.assemble(1, name, "prog", [SHA1], None),
        lambda: store.assemble_bundle([1], SHA1, [name], None, None),
        lambda: store.assemble_bundle([1], name, [SHA1], None, None),
    ]
    for call in calls:
        with pytest.raises(BadChunkName):
            call()
    assert listing(tmp_path) == before
    assert store.failure(1, SHA1) is None


def test_a_file_of_many_chunks_is_assembled_as_the_whole_file_would_be(tmp_path: Path) -> None:
    data = Path(_brotli.__file__).read_bytes()
    assert len(data) > 4 * BLOCK_SIZE
    whole = next(iter(debuginfo.Archive.from_bytes(data).iter_objects()))
    store = SymbolStore(tmp_path, SMALL)
    chunks = put(store, data, SMALL.chunk_size)
    checksum = hashlib.sha1(data).hexdigest()
    tracemalloc.start()
    try:
        result = store.assemble(1, checksum, "_brotli.so", chunks, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.state == "ok" and result.file is not None
    assert peak < 2 * BLOCK_SIZE, f"assembly held {peak} bytes at once, of {len(chunks)} chunks"
    file = result.file
    assert (file.kind, file.debug_id, file.code_id, file.arch) == (
        "elf",
        str(whole.debug_id),
        whole.code_id,
        str(whole.arch),
    )
    assert file.size == store.path(file).stat().st_size
    assert hashlib.sha1(store.path(file).read_bytes()).hexdigest() == checksum
    assert store.by_debug_id(1, str(whole.debug_id)) == file
    assert not [p for p in tmp_path.rglob(f"{PARTIAL_PREFIX}*")]


def test_chunks_that_do_not_make_the_named_file_are_an_error(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path, SMALL)
    text = b"a.B -> c:\n    void d() -> e\n" * 20_000
    chunks = put(store, text, SMALL.chunk_size)
    result = store.assemble(1, hashlib.sha1(text + b"!").hexdigest(), "mapping.txt", chunks, None)
    assert result.state == "error" and "checksum" in str(result.detail)
    assert not list(store.files.iterdir())
    right = store.assemble(1, hashlib.sha1(text).hexdigest(), "mapping.txt", chunks, None)
    assert right.state == "ok" and right.file is not None
    assert right.file.debug_id == str(uuid.uuid5(PROGUARD_NAMESPACE, text.decode()))
    assert not [p for p in tmp_path.rglob(f"{PARTIAL_PREFIX}*")]


def test_a_file_larger_than_max_file_size_is_an_error(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path, UploadLimits(chunk_size=1024, max_file_size=4096))
    data = os.urandom(5000)
    chunks = put(store, data, 1024)
    result = store.assemble(1, hashlib.sha1(data).hexdigest(), "prog", chunks, None)
    assert result.state == "error" and "larger than 4096" in str(result.detail)
    assert not list(store.files.iterdir())


def test_only_regular_files_are_chunks(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(DATA)
    (store.chunks / SHA1).symlink_to(secret)
    other = hashlib.sha1(b"other").hexdigest()
    (store.chunks / other).mkdir()
    assert store.missing_chunks([SHA1, other]) == [SHA1, other]
    assert store.assemble(1, SHA1, "prog", [SHA1], None).state == "not_found"
    with pytest.raises(BadDebugFile, match="cannot be read"):
        identify("mapping.txt", store.chunks / SHA1)


def test_a_proguard_mapping_is_identified_from_its_file(tmp_path: Path) -> None:
    # " -> " falls across the first 1 MiB block boundary, a multi-byte character across the second.
    text = ("é" * (BLOCK_SIZE // 2 - 2) + "aB -> c:\n" + "ü€" * 400_000).encode()
    assert text.index(b" -> ") < BLOCK_SIZE < text.index(b" -> ") + 4
    path = tmp_path / "mapping.txt"
    path.write_bytes(text)
    assert identify("mapping.txt", path)[:2] == (
        "proguard",
        str(uuid.uuid5(PROGUARD_NAMESPACE, text.decode())),
    )
    path.write_bytes(b"no arrow here\n" * 100_000)
    with pytest.raises(BadDebugFile, match="not a ProGuard mapping"):
        identify("mapping.txt", path)
    path.write_bytes(text[:1000] + text[1001:])  # a character cut in two
    with pytest.raises(BadDebugFile, match="is text"):
        identify("mapping.txt", path)


def test_a_gzip_chunk_is_inflated_no_further_than_the_chunk_size(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path, SMALL)
    zeros = bytes(50 * 1024 * 1024)
    bomb = zlib.compress(zeros, wbits=31)
    writer = store.chunk_writer(hashlib.sha1(zeros).hexdigest(), gzip=True)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            for start in range(0, len(bomb), 65536):
                writer.write(bomb[start : start + 65536])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * SMALL.chunk_size
    assert listing(tmp_path) == {"chunks", "files"}


def test_gzip_chunks_arrive_in_any_pieces_and_members(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path, SMALL)
    data = os.urandom(1000) * 50
    two_members = zlib.compress(data[:7], wbits=31) + zlib.compress(data[7:], wbits=31)
    writer = store.chunk_writer(hashlib.sha1(data).hexdigest(), gzip=True)
    for byte in range(len(two_members)):
        writer.write(two_members[byte : byte + 1])
    writer.finish()
    assert (store.chunks / hashlib.sha1(data).hexdigest()).read_bytes() == data
    truncated = store.chunk_writer(SHA1, gzip=True)
    truncated.write(zlib.compress(DATA, wbits=31)[:-4])
    with pytest.raises(BadDebugFile, match="ends in the middle"):
        truncated.finish()
    with pytest.raises(BadDebugFile, match="not valid gzip"):
        store.put_chunk(SHA1, b"not gzip at all", gzip=True)
    assert not (store.chunks / SHA1).exists()
    assert not [p for p in tmp_path.rglob(f"{PARTIAL_PREFIX}*")]


def test_garbage_older_than_a_day_is_collected(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path)
    now = 1_900_000_000.0
    old_chunk, new_chunk = hashlib.sha1(b"old").hexdigest(), hashlib.sha1(b"new").hexdigest()
    store.put_chunk(old_chunk, b"old")
    store.put_chunk(new_chunk, b"new")
    old_partial = store.files / f"{PARTIAL_PREFIX}interrupted"
    new_partial = store.chunks / f"{PARTIAL_PREFIX}uploading"
    legacy = store.files / "tmpab12cd"  # what a write interrupted before this version left
    assembled = store.files / hashlib.sha1(b"kept").hexdigest()
    for path in (old_partial, new_partial, legacy, assembled):
        path.write_bytes(b"x")
    for path in (store.chunks / old_chunk, old_partial, legacy, assembled):
        os.utime(path, (now - 86_401, now - 86_401))
    for path in (store.chunks / new_chunk, new_partial):
        os.utime(path, (now - 3600, now - 3600))
    assert store.collect_garbage(now=now) == 3
    assert listing(tmp_path) == {
        "chunks",
        "files",
        f"chunks/{new_chunk}",
        f"chunks/{PARTIAL_PREFIX}uploading",
        f"files/{assembled.name}",
    }
    assert store.collect_garbage(now=now) == 0
    assert store.collect_garbage(now=now, max_age=60) == 2


def test_chunks_asked_about_are_kept_for_another_day(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path)
    store.put_chunk(SHA1, DATA)
    day_ago = os.stat(store.chunks / SHA1).st_mtime - 86_000
    os.utime(store.chunks / SHA1, (day_ago, day_ago))
    assert store.missing_chunks([SHA1]) == []
    assert store.collect_garbage(now=day_ago + 86_400 + 1000) == 0
