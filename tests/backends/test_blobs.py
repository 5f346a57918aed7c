"""The `BlobStore` conformance suite, on every implementation (conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from profd.store.blobs import BlobConflict, BlobNotFound, BlobStore
from profd.store.protocols import BlobStore as Blobs


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
