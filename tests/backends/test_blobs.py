"""The `BlobStore` conformance suite, on every implementation (conftest.py)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import obstore
import pytest
from obstore.store import from_url

from profd.errors import BackendUnavailable
from profd.services import open_blobs
from profd.settings import Settings
from profd.store.blobs import BlobConflict, BlobNotFound, BlobStore
from profd.store.protocols import BlobStore as Blobs
from tests.servers import s3rver
from tests.servers.s3rver import S3rver


def test_blobs_are_written_once(blobs: Blobs) -> None:
    assert blobs.put_if_absent("1/2/abc", b"first") is True
    assert blobs.put_if_absent("1/2/abc", b"second") is False
    assert blobs.get("1/2/abc") == b"first"
    assert blobs.put_if_absent("1/2/chunks/p/abc", b"chunk") is True
    assert blobs.get("1/2/chunks/p/abc") == b"chunk"


def test_deleting_twice_is_fine_and_a_deleted_blob_is_not_found(blobs: Blobs) -> None:
    blobs.put_if_absent("1/2/abc", b"x" * 100_000)
    blobs.delete("1/2/abc")
    blobs.delete("1/2/abc")
    with pytest.raises(BlobNotFound):
        blobs.get("1/2/abc")
    with pytest.raises(BlobNotFound):
        blobs.get("1/2/never")
    assert blobs.put_if_absent("1/2/abc", b"again") is True and blobs.get("1/2/abc") == b"again"


def test_a_directory_in_the_way_is_a_conflict_not_a_copy(tmp_path: Path) -> None:
    # File systems only: object stores have no directories.
    blobs = BlobStore((tmp_path / "b").as_uri())
    blobs.put_if_absent("1/2/abc/def", b"chunk")
    with pytest.raises(BlobConflict):
        blobs.put_if_absent("1/2/abc", b"profile")


def test_a_store_that_answers_passes_its_check(blobs: Blobs) -> None:
    blobs.check()


def test_files_are_stored_streamed_and_listed_by_age(blobs: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several stream blocks, and a multipart upload on S3
    source = tmp_path / "source"
    source.write_bytes(data)
    assert not blobs.exists("symbols/chunks/a")
    blobs.put_file("symbols/chunks/a", source)
    blobs.put_file("symbols/chunks/a", source)  # content-addressed keys: writing again is harmless
    assert blobs.exists("symbols/chunks/a") and source.exists()
    assert b"".join(blobs.blocks("symbols/chunks/a")) == data
    with pytest.raises(BlobNotFound):
        b"".join(blobs.blocks("symbols/chunks/none"))
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert blobs.modified_before("symbols/chunks/", later) == ["symbols/chunks/a"]
    assert blobs.modified_before("symbols/chunks/", later - timedelta(hours=1)) == []
    assert blobs.modified_before("symbols/files/", later) == []


def test_two_writers_of_one_profile_leave_one_copy(blobs: BlobStore) -> None:
    # Two workers handed the same message store the same bytes under the same key, at once.
    data = os.urandom(200_000)
    with ThreadPoolExecutor(8) as pool:
        wrote = list(pool.map(lambda _: blobs.put_if_absent("1/2/same", data), range(16)))
    assert any(wrote)
    assert blobs.get("1/2/same") == data
    assert blobs.modified_before("1/2/", datetime.now(UTC) + timedelta(minutes=1)) == ["1/2/same"]
    # ... and a later, different write of that key (a redelivery) changes nothing.
    assert blobs.put_if_absent("1/2/same", b"redelivered") is False
    assert blobs.get("1/2/same") == data


# -- S3 on a real server (s3rver) -----------------------------------------------------------


@pytest.mark.npm
def test_s3rver_ignores_conditional_puts(s3rver_server: S3rver) -> None:
    """What the HEAD in put_if_absent is for: obstore's mode="create" sends If-None-Match: *,
    and s3rver overwrites anyway (AWS, MinIO and local files refuse with 412)."""
    store = from_url(s3rver_server.url(), **s3rver_server.options())
    obstore.put(store, "k", b"first", mode="create")
    obstore.put(store, "k", b"second", mode="create")  # no AlreadyExistsError
    assert bytes(obstore.get(store, "k").bytes()) == b"second"


@pytest.mark.npm
def test_a_store_that_stops_answering_is_unavailable_until_it_is_back(tmp_path: Path) -> None:
    server = s3rver.start(tmp_path / "s3")
    try:
        blobs = open_blobs(server.url("down"), Settings.load(data_dir=tmp_path, **server.settings()))
        source = tmp_path / "source"
        source.write_bytes(b"chunk")
        assert blobs.put_if_absent("1/2/kept", b"profile")
        server.stop()
        calls = [
            lambda: blobs.put_if_absent("1/2/new", b"profile"),
            lambda: blobs.get("1/2/kept"),
            lambda: b"".join(blobs.blocks("1/2/kept")),
            lambda: blobs.put_file("symbols/chunks/c", source),
            lambda: blobs.modified_before("1/", datetime.now(UTC)),
            blobs.check,
        ]
        for call in calls:  # each one after obstore's own retries (about 3 s)
            with pytest.raises(BackendUnavailable, match="blob store is unavailable"):
                call()
        server.start()  # the same port and directory
        assert blobs.get("1/2/kept") == b"profile"
        assert blobs.put_if_absent("1/2/new", b"profile") is True
    finally:
        server.stop()


@pytest.mark.npm
def test_a_store_that_refuses_is_unavailable_not_a_missing_blob(
    s3rver_server: S3rver, tmp_path: Path
) -> None:
    # s3rver checks the access key, not the signature.
    wrong_key = Settings.load(
        data_dir=tmp_path, **{**s3rver_server.settings(), "blob_access_key_id": "nobody"}
    )
    no_bucket = Settings.load(data_dir=tmp_path, **s3rver_server.settings())
    for blobs in (
        open_blobs(s3rver_server.url(), wrong_key),
        open_blobs("s3://no-such-bucket/profiles", no_bucket),
    ):
        with pytest.raises(BackendUnavailable):
            blobs.put_if_absent("1/2/abc", b"profile")
        with pytest.raises(BackendUnavailable):
            blobs.check()
    with pytest.raises(BackendUnavailable):
        open_blobs(s3rver_server.url(), wrong_key).get("1/2/abc")
