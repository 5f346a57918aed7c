"""Envelopes as the Python SDK sends them, built from our own example profile."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-transaction.json"


def python_profile(profile_id: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = json.loads(EXAMPLE.read_text())
    profile["event_id"] = profile_id or uuid.uuid4().hex
    profile["transactions"][0]["id"] = uuid.uuid4().hex
    return profile


def envelope(profile: dict[str, Any] | bytes, with_transaction: bool = True) -> bytes:
    """A profile item and its transaction item, each with its length, as sentry-sdk frames them."""
    payload = profile if isinstance(profile, bytes) else json.dumps(profile).encode()
    items = [({"type": "profile", "content_type": "application/json"}, payload)]
    if with_transaction:
        transaction = {
            "type": "transaction",
            "transaction": "POST /cart/checkout",
            "platform": "python",
            "start_timestamp": 1795684589.0,
            "timestamp": 1795684589.4,
            "release": "shop@2.4.1",
            "environment": "production",
            "contexts": {
                "trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "op": "http"}
            },
        }
        items.append(
            ({"type": "transaction", "content_type": "application/json"}, json.dumps(transaction).encode())
        )
    out = [json.dumps({"event_id": uuid.uuid4().hex, "sent_at": "2026-11-26T09:30:00Z"}).encode()]
    for headers, body in items:
        out.append(json.dumps({**headers, "length": len(body)}).encode())
        out.append(body)
    return b"\n".join(out) + b"\n"


def post(url: str, body: bytes, *, key: str | None, encoding: str | None = None, timeout: float = 30) -> int:
    """POST an envelope as an SDK does; returns the HTTP status."""
    headers = {"Content-Type": "application/x-sentry-envelope"}
    if key is not None:
        headers["X-Sentry-Auth"] = f"Sentry sentry_key={key}, sentry_version=7, sentry_client=profd-tests/1.0"
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)
