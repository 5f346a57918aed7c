"""The symbol store's files in object storage, when that storage stops answering: every
node fails with BackendUnavailable (the message is retried), never as if a file were bad
or missing (which would make a profile INVALID or leave it unsymbolicated for good)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import _brotli
import pytest

from profd.errors import BackendUnavailable
from profd.services import open_blobs
from profd.settings import Settings
from profd.symbols.native import NativeSymbolicator
from profd.symbols.objects import SymbolObjects
from profd.symbols.store import SymbolStore
from tests.servers import s3rver

pytestmark = [pytest.mark.npm]


@pytest.mark.skipif(not s3rver.npm_available(), reason="node and npm are needed for s3rver")
def test_a_store_that_stops_answering_fails_as_unavailable(tmp_path: Path) -> None:
    server = s3rver.start(tmp_path / "s3")
    settings = Settings.load(data_dir=tmp_path, **server.settings())

    def node(name: str) -> SymbolStore:
        objects = SymbolObjects(open_blobs(server.url("symbols"), settings), tmp_path / name / "cache")
        return SymbolStore(objects, tmp_path / "index.sqlite3")

    try:
        data = Path(_brotli.__file__).read_bytes()  # a shared object, with symbols
        checksum = hashlib.sha1(data).hexdigest()
        uploader, other = node("a"), node("b")
        uploader.put_chunk(checksum, data)
        result = uploader.assemble(1, checksum, "_brotli.so", [checksum], None)
        assert result.state == "ok" and result.file is not None
        server.stop()
        calls = [
            lambda: other.missing_chunks([checksum]),
            lambda: other.path(result.file),  # type: ignore[arg-type]
            lambda: NativeSymbolicator(other)._symcache(result.file),
        ]
        for call in calls:  # each after obstore's own retries (about 3 s)
            with pytest.raises(BackendUnavailable):
                call()
        server.start()
        assert NativeSymbolicator(other)._symcache(result.file) is not None
    finally:
        server.stop()
