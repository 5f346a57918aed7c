"""Chunks in, files out: names checked before any path exists, chunks and files streamed
within their bounds, and what is left over collected after a day."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
import uuid
import zlib
from pathlib import Path

import _brotli
import pytest
from symbolic import debuginfo

from profd.symbols.objects import BLOCK_SIZE, PARTIAL_PREFIX, BadChunkName, chunk_key, chunk_name, file_key
from profd.symbols.store import (
    PROGUARD_NAMESPACE,
    BadDebugFile,
    SymbolStore,
    TooLarge,
    UploadLimits,
    identify,
)
from tests.symbols.conftest import MakeStore, local_store

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
    store = local_store(tmp_path)
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


def test_a_file_of_many_chunks_is_assembled_as_the_whole_file_would_be(
    make_store: MakeStore, tmp_path: Path
) -> None:
    data = Path(_brotli.__file__).read_bytes()
    assert len(data) > 4 * BLOCK_SIZE
    whole = next(iter(debuginfo.Archive.from_bytes(data).iter_objects()))
    store = make_store(SMALL)
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
    # Another node, its cache empty, reads the file from the store.
    assert make_store(node="b").path(file).read_bytes() == data


def test_chunks_that_do_not_make_the_named_file_are_an_error(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store(SMALL)
    text = b"a.B -> c:\n    void d() -> e\n" * 20_000
    chunks = put(store, text, SMALL.chunk_size)
    wrong = hashlib.sha1(text + b"!").hexdigest()
    result = store.assemble(1, wrong, "mapping.txt", chunks, None)
    assert result.state == "error" and "checksum" in str(result.detail)
    assert not store.objects.exists(file_key(wrong))
    right = store.assemble(1, hashlib.sha1(text).hexdigest(), "mapping.txt", chunks, None)
    assert right.state == "ok" and right.file is not None
    assert right.file.debug_id == str(uuid.uuid5(PROGUARD_NAMESPACE, text.decode()))
    assert not [p for p in tmp_path.rglob(f"{PARTIAL_PREFIX}*")]


def test_a_file_larger_than_max_file_size_is_an_error(make_store: MakeStore) -> None:
    store = make_store(UploadLimits(chunk_size=1024, max_file_size=4096))
    data = os.urandom(5000)
    chunks = put(store, data, 1024)
    result = store.assemble(1, hashlib.sha1(data).hexdigest(), "prog", chunks, None)
    assert result.state == "error" and "larger than 4096" in str(result.detail)
    assert not store.objects.exists(file_key(hashlib.sha1(data).hexdigest()))


def test_only_regular_files_are_chunks(tmp_path: Path) -> None:
    # A local store only (obstore's local files follow symlinks; profd does not).
    store = local_store(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(DATA)
    (tmp_path / "chunks").mkdir()
    (tmp_path / "chunks" / SHA1).symlink_to(secret)
    other = hashlib.sha1(b"other").hexdigest()
    (tmp_path / "chunks" / other).mkdir()
    assert store.missing_chunks([SHA1, other]) == [SHA1, other]
    assert store.assemble(1, SHA1, "prog", [SHA1], None).state == "not_found"
    with pytest.raises(BadDebugFile, match="cannot be read"):
        identify("mapping.txt", tmp_path / "chunks" / SHA1)


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
    store = local_store(tmp_path, SMALL)
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
    assert listing(tmp_path) == {"cache"}


def test_gzip_chunks_arrive_in_any_pieces_and_members(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store(SMALL)
    data = os.urandom(1000) * 50
    two_members = zlib.compress(data[:7], wbits=31) + zlib.compress(data[7:], wbits=31)
    writer = store.chunk_writer(hashlib.sha1(data).hexdigest(), gzip=True)
    for byte in range(len(two_members)):
        writer.write(two_members[byte : byte + 1])
    writer.finish()
    assert b"".join(store.objects.blocks(chunk_key(hashlib.sha1(data).hexdigest()))) == data
    truncated = store.chunk_writer(SHA1, gzip=True)
    truncated.write(zlib.compress(DATA, wbits=31)[:-4])
    with pytest.raises(BadDebugFile, match="ends in the middle"):
        truncated.finish()
    with pytest.raises(BadDebugFile, match="not valid gzip"):
        store.put_chunk(SHA1, b"not gzip at all", gzip=True)
    assert not store.objects.exists(chunk_key(SHA1))
    assert not [p for p in tmp_path.rglob(f"{PARTIAL_PREFIX}*")]


def test_garbage_older_than_a_day_is_collected(tmp_path: Path) -> None:
    store = local_store(tmp_path)
    now = 1_900_000_000.0
    old_chunk, new_chunk = hashlib.sha1(b"old").hexdigest(), hashlib.sha1(b"new").hexdigest()
    store.put_chunk(old_chunk, b"old")
    store.put_chunk(new_chunk, b"new")
    (tmp_path / "files").mkdir()
    old_partial = tmp_path / "cache" / f"{PARTIAL_PREFIX}interrupted"
    new_partial = tmp_path / "cache" / f"{PARTIAL_PREFIX}uploading"
    # What writes interrupted before this version left beside the files.
    legacy = tmp_path / "files" / "tmpab12cd"
    legacy_partial = tmp_path / "files" / f"{PARTIAL_PREFIX}interrupted"
    assembled = tmp_path / "files" / hashlib.sha1(b"kept").hexdigest()
    for path in (old_partial, new_partial, legacy, legacy_partial, assembled):
        path.write_bytes(b"x")
    for path in (tmp_path / "chunks" / old_chunk, old_partial, legacy, legacy_partial, assembled):
        os.utime(path, (now - 86_401, now - 86_401))
    for path in (tmp_path / "chunks" / new_chunk, new_partial):
        os.utime(path, (now - 3600, now - 3600))
    assert store.collect_garbage(now=now) == 4
    assert listing(tmp_path) == {
        "cache",
        "chunks",
        "files",
        f"chunks/{new_chunk}",
        f"cache/{PARTIAL_PREFIX}uploading",
        f"files/{assembled.name}",
    }
    assert store.collect_garbage(now=now) == 0
    assert store.collect_garbage(now=now, max_age=60) == 2


def test_chunks_are_collected_by_the_age_the_store_gives_them(make_store: MakeStore) -> None:
    store = make_store()
    store.put_chunk(SHA1, DATA)
    assert store.assemble(1, SHA1, "mapping.txt", [SHA1], None).state == "error"  # no arrow
    assert store.collect_garbage() == 0
    assert store.collect_garbage(now=time.time() + 86_400 + 60) == 1
    assert store.missing_chunks([SHA1]) == [SHA1]
