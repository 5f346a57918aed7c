"""terser minifies, sentry-cli injects debug ids and uploads the bundle; node frames come out original."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from profd.settings import Settings
from profd.store import BlobStore, ProfileStore
from tests.clients import sentry_cli
from tests.e2e.server import Server
from tests.e2e.test_proguard import token

# What this module needs beyond Python: `make test-fast` leaves it out.
pytestmark = [pytest.mark.npm]

NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm-e2e"

APP = """\
function computeTotal(items) {
  let total = 0;
  for (const item of items) {
    total += priceOf(item);
  }
  return total;
}

function priceOf(item) {
  if (!item) {
    throw new Error("no item");
  }
  return item.price * item.qty;
}

export function checkout(cart) {
  const total = computeTotal(cart.items);
  console.log("total", total);
  return total;
}
"""


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of `needle` in `text`."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def node_profile(
    event_id: str, frames: list[dict[str, object]], release: str, images: list[dict[str, str]]
) -> dict[str, object]:
    return {
        "version": "1",
        "platform": "node",
        "event_id": event_id,
        "timestamp": "2026-11-26T10:00:00Z",
        "release": release,
        "device": {"architecture": "x64"},
        "os": {"name": "Linux", "version": "6.1"},
        "transactions": [
            {
                "id": "cd" * 16,
                "name": "checkout",
                "trace_id": "ef" * 16,
                "active_thread_id": "0",
                "relative_start_ns": "0",
                "relative_end_ns": "90000000",
            }
        ],
        "debug_meta": {"images": images},
        "profile": {
            "frames": frames,
            "stacks": [[0, 1]],
            "samples": [
                {"stack_id": 0, "thread_id": "0", "elapsed_since_start_ns": str(i * 10_000_000)}
                for i in range(5)
            ],
        },
    }


@pytest.mark.skipif(not sentry_cli.npm_available(), reason="npm installs sentry-cli and terser")
def test_minified_node_frames_map_to_the_original_source(server: Server, tmp_path: Path) -> None:
    cli = sentry_cli.install(NPM_CACHE)
    dist = tmp_path / "dist"
    dist.mkdir()
    (tmp_path / "app.js").write_text(APP)
    subprocess.run(
        [
            str(sentry_cli.terser(cli)),
            str(tmp_path / "app.js"),
            "--module",
            "-c",
            "-m",
            "--source-map",
            "includeSources,url='app.min.js.map'",
            "-o",
            str(dist / "app.min.js"),
        ],
        check=True,
        cwd=tmp_path,
    )
    secret = token(server)
    injected = sentry_cli.run(cli, server.url, secret, "sourcemaps", "inject", str(dist))
    assert injected.returncode == 0, injected.stderr
    uploaded = sentry_cli.run(
        cli, server.url, secret, "sourcemaps", "upload", "--release", "shop-web@1.0", str(dist)
    )
    assert uploaded.returncode == 0, uploaded.stderr
    minified = (dist / "app.min.js").read_text()
    debug_id = re.search(r"debugId=([0-9a-f-]{36})", minified).group(1)  # type: ignore[union-attr]

    throw_line, throw_column = position(minified, "throw")
    log_line, log_column = position(minified, "console.log")
    expected = [
        ("priceOf", position(APP, "throw new Error")[0]),
        ("checkout", position(APP, "console.log")[0]),
    ]
    cases = {
        # by the debug id the SDK reports for the file
        "a1" * 16: (
            "/srv/shop/dist/app.min.js",
            [{"type": "sourcemap", "code_file": "/srv/shop/dist/app.min.js", "debug_id": debug_id}],
        ),
        # by release and URL ("~/app.min.js" in the bundle)
        "b2" * 16: ("app:///dist/app.min.js", []),
    }
    for event_id, (abs_path, images) in cases.items():
        frames = [
            {
                "function": "t",
                "abs_path": abs_path,
                "filename": "app.min.js",
                "lineno": throw_line,
                "colno": throw_column,
            },
            {
                "function": "o",
                "abs_path": abs_path,
                "filename": "app.min.js",
                "lineno": log_line,
                "colno": log_column,
            },
        ]
        path = tmp_path / f"{event_id}.json"
        path.write_text(json.dumps(node_profile(event_id, frames, "shop-web@1.0", images)))
        subprocess.run(
            [sys.executable, "-m", "profd", "process", "--data-dir", str(server.data_dir), str(path)],
            check=True,
            capture_output=True,
        )
        index = server.index()
        metadata = index.profile(1, event_id)
        assert metadata is not None
        stored = ProfileStore(BlobStore(Settings.load(data_dir=server.data_dir).blob_store_url), index).load(
            metadata
        )
        result = [(f["function"], f["lineno"]) for f in stored["profile"]["frames"][:2]]
        assert result == expected, abs_path
        assert all(f["data"]["symbolicated"] for f in stored["profile"]["frames"][:2])
        assert stored["profile"]["frames"][0]["filename"] == "app.js"
