"""The debug-file store on each object store it runs on: a local directory (the embedded
default) and S3 (s3rver), with the index in an SQLite file beside them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from profd.services import open_blobs
from profd.settings import Settings
from profd.symbols.objects import SymbolObjects
from profd.symbols.store import SymbolStore, UploadLimits
from tests.servers.s3rver import S3rver

MakeStore = Callable[..., SymbolStore]


def local_store(root: Path, limits: UploadLimits | None = None) -> SymbolStore:
    """The embedded default: chunks/ and files/ under `root`, which is its own cache."""
    objects = SymbolObjects(open_blobs(root.resolve().as_uri()), root / "cache")
    return SymbolStore(objects, root / "index.sqlite3", limits)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.npm)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Makes stores (`limits` as given) on one object store; all share one index and
    bucket prefix, each has its own cache: nodes of one deployment."""
    made: list[SymbolStore] = []
    url = (tmp_path / "store").resolve().as_uri()
    settings = Settings.load(data_dir=tmp_path)
    if request.param == "s3":
        s3rver: S3rver = request.getfixturevalue("s3rver_server")
        url, settings = s3rver.url(), Settings.load(data_dir=tmp_path, **s3rver.settings())

    def make(limits: UploadLimits | None = None, node: str = "a") -> SymbolStore:
        objects = SymbolObjects(open_blobs(url, settings), tmp_path / node / "cache")
        made.append(SymbolStore(objects, tmp_path / "index.sqlite3", limits))
        return made[-1]

    yield make
    for store in made:
        store.close()
