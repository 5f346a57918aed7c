"""sentry-cli uploads a ProGuard mapping to profd; an obfuscated Android profile comes out readable."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from profd.settings import Settings
from profd.store import BlobStore, ProfileStore
from tests.clients import sentry_cli
from tests.e2e.server import Server

# What this module needs beyond Python: `make test-fast` leaves it out.
pytestmark = [pytest.mark.npm]

NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm-e2e"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# R8's format: `original -> obfuscated:` per class; a method line per range, several lines
# for one obfuscated range where methods were inlined (innermost first).
MAPPING = """\
# compiler: R8
com.example.shop.CheckoutActivity -> com.example.shop.a:
# {"id":"sourceFile","fileName":"CheckoutActivity.kt"}
    1:1:void applyCoupon():30:30 -> a
    1:1:void refreshTotals():21 -> a
    1:1:void onPayClicked(android.view.View):12 -> a
    2:4:void onCreate(android.os.Bundle):8:10 -> onCreate
com.example.shop.PriceCalculator -> b.c:
# {"id":"sourceFile","fileName":"PriceCalculator.kt"}
    5:7:long total(long[],int):40:42 -> a
"""
MAPPING_UUID = str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_DNS, "guardsquare.com"), MAPPING))


def token(server: Server) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "profd", "tokens", "create", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def obfuscated_profile(build_id: str, profile_id: str) -> dict[str, object]:
    profile = json.loads((EXAMPLES / "android-transaction.json").read_text())
    profile.update(build_id=build_id, profile_id=profile_id)
    methods = profile["profile"]["methods"]
    methods[1] = {
        "id": 2,
        "class_name": "com.example.shop.a",
        "name": "a",
        "signature": "()V",
        "source_file": "SourceFile",
        "source_line": 1,
    }
    methods[2] = {
        "id": 3,
        "class_name": "b.c",
        "name": "a",
        "signature": "([JI)J",
        "source_file": "SourceFile",
        "source_line": 6,
    }
    return profile


@pytest.mark.skipif(not sentry_cli.npm_available(), reason="npm installs sentry-cli")
def test_sentry_cli_uploads_a_mapping_and_profiles_are_deobfuscated(server: Server, tmp_path: Path) -> None:
    binary = sentry_cli.install(NPM_CACHE)
    mapping = tmp_path / "mapping.txt"
    mapping.write_text(MAPPING)
    uploaded = sentry_cli.run(binary, server.url, token(server), "upload-proguard", str(mapping))
    assert uploaded.returncode == 0, uploaded.stderr
    assert f"OK {MAPPING_UUID}" in uploaded.stdout

    profile_path = tmp_path / "profile.json"
    profile_path.write_text(json.dumps(obfuscated_profile(MAPPING_UUID, "feedc0de" * 4)))
    subprocess.run(
        [sys.executable, "-m", "profd", "process", "--data-dir", str(server.data_dir), str(profile_path)],
        check=True,
        capture_output=True,
    )
    index = server.index()
    metadata = index.profile(1, "feedc0de" * 4)
    assert metadata is not None
    stored = ProfileStore(BlobStore(Settings.load(data_dir=server.data_dir).blob_store_url), index).load(
        metadata
    )
    methods = {m["id"]: m for m in stored["profile"]["methods"]}
    pay = methods[2]
    assert (pay["class_name"], pay["name"], pay["signature"]) == (
        "com.example.shop.CheckoutActivity",
        "onPayClicked",
        "()",
    )
    assert [(f["name"], f["source_line"], f["source_file"]) for f in pay["inline_frames"]] == [
        ("onPayClicked", 12, "CheckoutActivity.kt"),
        ("refreshTotals", 21, "CheckoutActivity.kt"),
        ("applyCoupon", 30, "CheckoutActivity.kt"),
    ]
    total = methods[3]
    assert (total["class_name"], total["name"], total["signature"], total["source_line"]) == (
        "com.example.shop.PriceCalculator",
        "total",
        "(long[], int): long",
        41,
    )
    assert total["data"] == {"deobfuscation_status": "deobfuscated"}


def request(
    server: Server, path: str, body: bytes | None, token: str, content_type: str = "application/json"
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        server.url + path,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def assemble(server: Server, secret: str, checksum: str, name: str, chunks: list[str]) -> dict[str, object]:
    body = json.dumps({checksum: {"name": name, "chunks": chunks}}).encode()
    status, answer = request(server, "/api/0/projects/default/default/files/difs/assemble/", body, secret)
    assert status == 200
    result: dict[str, object] = json.loads(answer)[checksum]
    return result


def upload_chunk(server: Server, secret: str, name: str, data: bytes) -> int:
    boundary = "profd-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _ = request(
        server,
        "/api/0/organizations/default/chunk-upload/",
        body,
        secret,
        f"multipart/form-data; boundary={boundary}",
    )
    return status


def test_bad_uploads_end_in_errors_and_write_nothing(server: Server) -> None:
    secret = token(server)
    assert request(server, "/api/0/organizations/default/chunk-upload/", None, "wrong")[0] == 401
    assert request(server, "/api/0/organizations/other/chunk-upload/", None, secret)[0] == 403
    data = b"this is not an object file at all" * 10
    sha1 = hashlib.sha1(data).hexdigest()
    assert upload_chunk(server, secret, "0" * 40, data) == 400  # named by the wrong checksum
    missing = assemble(server, secret, sha1, "prog", [sha1])
    assert missing["state"] == "not_found" and missing["missingChunks"] == [sha1]
    assert upload_chunk(server, secret, sha1, data) == 200
    broken = assemble(server, secret, sha1, "prog", [sha1])
    assert broken["state"] == "error" and "not a debug file" in str(broken["detail"])
    truncated = assemble(server, secret, hashlib.sha1(data + b"!").hexdigest(), "prog", [sha1])
    assert truncated["state"] == "error" and "checksum" in str(truncated["detail"])
    files = Path(server.data_dir) / "symbols" / "files"
    assert not (files / sha1).exists()
