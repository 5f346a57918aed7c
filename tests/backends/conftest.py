"""The implementations every conformance suite runs on, by URL, as `profd.services` builds
them.  A new backend adds its URLs here (ClickHouse: ``chdb:///{tmp}/...``, PostgreSQL: a
throwaway cluster's URL) and must pass every test of tests/backends unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from profd.services import Opened, open_blobs, open_directory, open_index, open_reads
from profd.settings import Settings
from profd.store.protocols import BlobStore, Directory, ProfileIndex, ProfileReads
from tests.servers.s3rver import S3rver

# (index_url, directory_url): the directory an index sets `has_profiles` in.
INDEXES = {"sqlite": ("sqlite:///{tmp}/index.sqlite3", "sqlite:///{tmp}/index.sqlite3")}
DIRECTORIES = {"sqlite": "sqlite:///{tmp}/index.sqlite3"}
BLOBS = {"file": "file://{tmp}/blobs", "memory": "memory:///", "s3": "s3rver"}


class Indexed(NamedTuple):
    """An index's write and read sides, and the directory beside it."""

    index: ProfileIndex
    reads: ProfileReads
    directory: Directory


def _url(template: str, tmp_path: Path) -> str:
    return template.format(tmp=tmp_path.resolve())


@pytest.fixture(params=sorted(DIRECTORIES))
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Directory]:
    opened = open_directory(_url(DIRECTORIES[request.param], tmp_path))
    yield opened
    opened.close()


@pytest.fixture(params=sorted(INDEXES))
def indexed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Indexed]:
    yield from open_indexed(request.param, tmp_path)


def open_indexed(name: str, tmp_path: Path) -> Iterator[Indexed]:
    index_url, directory_url = (_url(template, tmp_path) for template in INDEXES[name])
    shared = Opened()
    made = Indexed(
        open_index(index_url, shared), open_reads(index_url, shared), open_directory(directory_url, shared)
    )
    yield made
    for backend in {id(b): b for b in made}.values():
        backend.close()


@pytest.fixture(
    params=[pytest.param(name, marks=[pytest.mark.npm] * (name == "s3")) for name in sorted(BLOBS)]
)
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "s3":
        # The session's s3rver, a fresh prefix of its bucket for each test.
        s3rver: S3rver = request.getfixturevalue("s3rver_server")
        return open_blobs(s3rver.url(), Settings.load(data_dir=tmp_path, **s3rver.settings()))
    return open_blobs(_url(BLOBS[request.param], tmp_path))
