"""Debug files and profiles in S3 (s3rver), shared by nodes that share nothing else on disk.

sentry-cli uploads a program's debug file to one `profd serve` whose blob URL is in the
bucket; `profd process` on two other nodes (each its own data directory, so an empty symbol
cache, and the same bucket and index) symbolicates profiles of it.  The first builds the
symcache and writes it back beside the debug file; the second uses that symcache and never
fetches the debug file at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import obstore
import pytest
from obstore.store import from_url
from symbolic import debuginfo
from symbolic.symcache import SYMCACHE_LATEST_VERSION

from profd.services import open_blobs
from profd.settings import Settings
from profd.store import ProfileStore
from tests.clients import sentry_cli
from tests.e2e.server import start_server
from tests.e2e.test_native import IMAGE_ADDR, NPM_CACHE, PROGRAM, addr2line, code_addresses
from tests.e2e.test_proguard import token
from tests.servers.s3rver import S3rver

pytestmark = [pytest.mark.npm]


def native_profile(binary: Path, event_id: str, leaves: list[int]) -> dict[str, Any]:
    """A profile of `binary` whose samples sit at `leaves` (addresses in the file)."""
    obj = next(iter(debuginfo.Archive.open(str(binary)).iter_objects()))
    return {
        "version": "1",
        "platform": "rust",
        "event_id": event_id,
        "timestamp": "2026-11-26T10:00:00Z",
        "device": {"architecture": "x86_64"},
        "os": {"name": "Linux", "version": "6.1"},
        "transactions": [
            {
                "id": "cd" * 16,
                "name": "native",
                "trace_id": "ef" * 16,
                "active_thread_id": "1",
                "relative_start_ns": "0",
                "relative_end_ns": "90000000",
            }
        ],
        "debug_meta": {
            "images": [
                {
                    "type": "elf",
                    "debug_id": str(obj.debug_id),
                    "code_id": obj.code_id,
                    "code_file": str(binary),
                    "image_addr": hex(IMAGE_ADDR),
                    "image_size": binary.stat().st_size,
                }
            ]
        },
        "profile": {
            "frames": [{"instruction_addr": hex(IMAGE_ADDR + a)} for a in leaves],
            "stacks": [[i] for i in range(len(leaves))],
            "samples": [
                {"stack_id": i % len(leaves), "thread_id": "1", "elapsed_since_start_ns": str(i * 10_000_000)}
                for i in range(6)
            ],
        },
    }


def process_on_node(data_dir: Path, profile: dict[str, Any], environment: dict[str, str]) -> None:
    """`profd process` as another node: its own data directory, the shared index and bucket."""
    data_dir.mkdir(parents=True)
    path = data_dir / "profile.json"
    path.write_text(json.dumps(profile))
    done = subprocess.run(
        [sys.executable, "-m", "profd", "process", "--json", "--data-dir", str(data_dir), str(path)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "accepted", done.stdout


@pytest.mark.skipif(
    not (shutil.which("gcc") and shutil.which("addr2line") and sentry_cli.npm_available()),
    reason="gcc, binutils and npm are needed",
)
def test_a_debug_file_uploaded_to_one_node_symbolicates_on_others(
    s3rver_server: S3rver, tmp_path: Path
) -> None:
    source = tmp_path / "prog.c"
    source.write_text(PROGRAM)
    binary = tmp_path / "prog"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(binary), str(source)], check=True)
    checksum = hashlib.sha1(binary.read_bytes()).hexdigest()
    prefix = f"deployment-{checksum[:8]}"
    shared = {"PROFD_BLOB_URL": f"s3://profd/{prefix}", **s3rver_server.environment()}

    node_a = start_server(tmp_path / "a", **shared)
    try:
        uploaded = sentry_cli.run(
            sentry_cli.install(NPM_CACHE),
            node_a.url,
            token(node_a),
            "debug-files",
            "upload",
            "--type",
            "elf",
            str(binary),
        )
        assert uploaded.returncode == 0, uploaded.stderr
        index_url = Settings.load(data_dir=node_a.data_dir).index_url
    finally:
        node_a.stop()
    bucket = from_url(f"s3://profd/{prefix}", **s3rver_server.options())

    def keys() -> set[str]:
        return {meta["path"] for batch in obstore.list(bucket) for meta in batch}

    symcache = f"symbols/files/{checksum}.v{SYMCACHE_LATEST_VERSION}.symcache"
    assert f"symbols/files/{checksum}" in keys() and symcache not in keys()
    assert not (node_a.data_dir / "symbols" / "files").exists(), "node A kept files outside its cache"

    nodes = {**shared, "PROFD_INDEX_URL": index_url, "PROFD_DIRECTORY_URL": index_url}
    leaves = code_addresses(binary, "compute")[1:-1:3]
    process_on_node(tmp_path / "b", native_profile(binary, "ab" * 16, leaves), nodes)
    assert symcache in keys(), "node B did not write its symcache back"
    assert (tmp_path / "b" / "symbols" / "cache" / "files" / checksum).exists()

    process_on_node(tmp_path / "c", native_profile(binary, "ac" * 16, leaves), nodes)
    cached = tmp_path / "c" / "symbols" / "cache" / "files"
    assert (cached / Path(symcache).name).exists()
    assert not (cached / checksum).exists(), "node C fetched the debug file instead of the symcache"

    # Both profiles are in the bucket, symbolicated as addr2line reads the program.
    settings = Settings.load(data_dir=tmp_path / "c", **{k[6:].lower(): v for k, v in nodes.items()})
    index = node_a.index()
    store = ProfileStore(open_blobs(settings.blob_store_url, settings), index)
    for event_id in ("ab" * 16, "ac" * 16):
        assert f"1/1/{event_id}" in keys()
        metadata = index.profile(1, event_id)
        assert metadata is not None
        stored = store.load(metadata)
        frames = stored["profile"]["frames"]
        for leaf, stack in zip(leaves, stored["profile"]["stacks"], strict=True):
            assert [frames[i]["function"] for i in stack] == [f for f, _, _ in addr2line(binary, leaf)]
        assert stored["debug_meta"]["images"][0]["debug_status"] == "found"
