"""Ingest under load: concurrent SDK-like clients against a real `profd serve` on loopback.

Clients post real captured envelopes (the 20-second sentry-sdk transaction profile and
chunk from bench/.data, captured on first use, gzip-compressed as SDKs send them), each
with fresh ids so that every one is a new profile to process.  Prints accepted envelopes/s,
p50/p99 latency, end-to-end processed profiles/s (until the worker has drained the queue),
the deepest the queue got, and the server's peak RSS.

    .venv/bin/python -m bench.ingest [--clients 4] [--seconds 20]   (from the repository root)
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP
from profd.ingest.envelope import parse_envelope
from profd.settings import Settings, sqlite_path
from tests.clients.python_sdk import capture_envelopes
from tests.e2e.server import Server, start_server

DATA = Path(__file__).resolve().parent / ".data"


def templates(seconds: float) -> list[tuple[bytes, bytes]]:
    """(envelope, id inside it) for each captured envelope carrying a profile."""
    DATA.mkdir(parents=True, exist_ok=True)
    captured = sorted(DATA.glob("envelope-*.bin")) or capture_envelopes(DATA, seconds)
    found = []
    for path in captured:
        data = path.read_bytes()
        for item in parse_envelope(data).items:
            if item.type in ("profile", "profile_chunk"):
                document = item.json()
                identifier = document.get("chunk_id") or document.get("event_id")
                found.append((data, str(identifier).encode()))
    return found


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of the process and its children (the worker), in MB."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [pid, *map(int, children)]:
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def client(
    server: Server,
    bodies: list[tuple[bytes, bytes]],
    until: float,
    latencies: list[float],
    statuses: list[int],
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": f"Sentry sentry_key={server.public_key}, sentry_version=7",
    }
    i = 0
    while time.monotonic() < until:
        template, identifier = bodies[i % len(bodies)]
        i += 1
        # Same length, new id: the envelope's item lengths stay right.
        body = gzip.compress(template.replace(identifier, uuid.uuid4().hex.encode()[: len(identifier)]), 1)
        start = time.perf_counter()
        connection.request("POST", "/api/1/envelope/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - start)
        statuses.append(response.status)
        if response.status == 429:
            time.sleep(float(response.getheader("Retry-After") or 1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the clients send")
    args = parser.parse_args()
    bodies = templates(20.0)
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(Path(scratch) / "data")
        queue = SqliteQueue(sqlite_path(Settings.load(data_dir=server.data_dir).bus_url))
        latencies: list[float] = []
        statuses: list[int] = []
        start = time.monotonic()
        until = start + args.seconds
        threads = [
            threading.Thread(target=client, args=(server, bodies, until, latencies, statuses))
            for _ in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        deepest = 0
        while any(thread.is_alive() for thread in threads):
            deepest = max(deepest, queue.pending("profiles", CONSUMER_GROUP))
            time.sleep(0.2)
        sent = time.monotonic() - start
        left_when_sending_stopped = queue.pending("profiles", CONSUMER_GROUP)
        while queue.pending("profiles", CONSUMER_GROUP):
            time.sleep(0.1)
        drained = time.monotonic() - start
        assert server.process is not None
        rss = peak_rss_mb(server.process.pid)
        stored = len(server.index().profiles(limit=1_000_000))
        server.stop()
        queue.close()
    accepted = statuses.count(200)
    latencies.sort()
    print(f"clients {args.clients}, sending for {sent:.1f} s, {len(bodies)} envelope templates")
    print(
        f"accepted envelopes/s       {accepted / sent:8.1f}   ({accepted} answered 200, {statuses.count(429)} 429)"
    )
    print(
        f"latency p50 / p99 (ms)     {statistics.median(latencies) * 1e3:8.1f} / {latencies[int(len(latencies) * 0.99)] * 1e3:.1f}"
    )
    print(
        f"processed profiles/s e2e   {stored / drained:8.1f}   ({stored} stored; queue drained {drained - sent:.1f} s after the last send)"
    )
    print(f"queue depth max / at end   {deepest:8d} / {left_when_sending_stopped}")
    print(f"peak RSS, server + worker  {rss:8.1f} MB")


if __name__ == "__main__":
    main()
