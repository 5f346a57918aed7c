from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from profd.services import open_services
from profd.settings import Settings
from profd.symbols.store import _SCHEMA, BadDebugFile, proguard_uuid, read_bundle_manifest, url_matches
from tests.symbols.conftest import MakeStore, local_store


def bundle(files: dict[str, bytes], manifest: object) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_chunks_must_match_their_name(make_store: MakeStore) -> None:
    store = make_store()
    with pytest.raises(BadDebugFile):
        store.put_chunk("0" * 40, b"data")
    store.put_chunk(hashlib.sha1(b"data").hexdigest(), b"data")
    assert store.missing_chunks([hashlib.sha1(b"data").hexdigest(), "1" * 40]) == ["1" * 40]


def test_a_zip_bomb_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    bomb = bundle({"files/_/_/huge.js": b"\0" * (8 << 20)}, {"files": {}})
    assert len(bomb) < 100_000
    (tmp_path / "bomb.zip").write_bytes(bomb)
    with pytest.raises(BadDebugFile, match="inflate"):
        read_bundle_manifest(tmp_path / "bomb.zip", max_bytes=1 << 20)
    store = local_store(tmp_path)
    sha1 = hashlib.sha1(b"not a zip").hexdigest()
    store.put_chunk(sha1, b"not a zip")
    result = store.assemble_bundle([1], sha1, [sha1], "r", None)
    assert result.state == "error" and "not an artifact bundle" in str(result.detail)
    assert not (tmp_path / "files").exists()


def test_bundles_are_found_by_debug_id_or_release_and_url(make_store: MakeStore) -> None:
    manifest = {
        "files": {
            "files/_/_/a.min.js": {
                "type": "minified_source",
                "url": "~/a.min.js",
                "headers": {"debug-id": "86EFC236-7477-56D7-A3C0-3529007C7221", "Sourcemap": "a.min.js.map"},
            }
        },
        "release": "web@1",
        "dist": "",
    }
    data = bundle({"files/_/_/a.min.js": b"var a=1;"}, manifest)
    sha1 = hashlib.sha1(data).hexdigest()
    store = make_store()
    store.put_chunk(sha1, data)
    assert store.assemble_bundle([1], sha1, [sha1], None, None).state == "ok"
    by_id = store.artifact(1, "minified_source", debug_id="86efc236-7477-56d7-a3c0-3529007c7221")
    by_url = store.artifact(1, "minified_source", release="web@1", url="https://example.com/static/a.min.js")
    assert by_id == by_url and by_id is not None and by_id.sourcemap == "a.min.js.map"
    assert store.artifact_bytes(by_id) == b"var a=1;"
    assert store.artifact(1, "minified_source", release="web@2", url="https://example.com/a.min.js") is None
    # Another node, its cache empty, finds the bundle through the shared index and store.
    other = make_store(node="b")
    assert other.artifact_bytes(by_id) == b"var a=1;"


def test_urls_with_a_tilde_match_any_host() -> None:
    assert url_matches("~/app.min.js", "app:///dist/app.min.js")
    assert url_matches("~/app.min.js", "https://cdn.example.com/app.min.js")
    assert not url_matches("~/app.min.js", "https://cdn.example.com/other.js")
    assert url_matches("https://x/app.js", "https://x/app.js")


def test_proguard_uuids_are_derived_from_the_text() -> None:
    text = b"a.B -> c.d:\n    void e() -> f\n"
    assert proguard_uuid(text) == proguard_uuid(text)
    with pytest.raises(BadDebugFile):
        proguard_uuid(b"\xff\xfe")
    with pytest.raises(BadDebugFile):
        proguard_uuid(b"hello")


def test_an_index_kept_apart_by_an_earlier_version_is_adopted(tmp_path: Path) -> None:
    # Earlier versions kept the debug-file index in <data_dir>/symbols/symbols.sqlite3 and the
    # files under <data_dir>/symbols/files: the embedded default's store is still there.
    data = b"a.B -> c:\n    void d() -> e\n"
    sha1 = hashlib.sha1(data).hexdigest()
    (tmp_path / "symbols" / "files").mkdir(parents=True)
    (tmp_path / "symbols" / "files" / sha1).write_bytes(data)
    legacy = sqlite3.connect(tmp_path / "symbols" / "symbols.sqlite3")
    legacy.executescript(_SCHEMA)
    legacy.execute(
        "INSERT INTO debug_files VALUES (1, ?, 'mapping.txt', 'proguard', ?, NULL, NULL, ?, 0)",
        (sha1, proguard_uuid(data), len(data)),
    )
    legacy.commit()
    legacy.close()
    services = open_services(Settings.load(data_dir=tmp_path))
    try:
        found = services.symbols.by_debug_id(1, proguard_uuid(data))
        assert found is not None and services.symbols.path(found).read_bytes() == data
    finally:
        services.close()
    assert not (tmp_path / "symbols" / "symbols.sqlite3").exists()
    assert (tmp_path / "symbols" / "symbols.sqlite3.adopted").exists()
