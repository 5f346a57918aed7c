"""Scale-out on one machine: processed profiles/s with 1, 2 and 4 worker processes.

Each run fills a fresh bus with real SDK envelopes (the ≈300 KB 20-second sentry-sdk
transaction profile and chunk of bench/.data, captured on first use, each posted with a
fresh id to a `profd serve --worker none`, gzip-compressed as SDKs send them), stops the
server, then starts `profd worker --processes N` and times the queue draining: from the
first message committed to the last, so that start-up (imports, opening the stores) is not
counted.  Every profile is processed end to end (decode, symbolicate, normalize, analyse,
store blob and index rows, outcomes).  Prints the median of --runs runs per worker count
and the speed-up over one worker.  Each profile is counted when its index row is written.

    .venv/bin/python -m bench.scale [--profiles 300] [--runs 3] [--processes 1 2 4]
    .venv/bin/python -m bench.scale --kafka 127.0.0.1:9092     (the same over a Kafka broker)

The measurement itself is `drain_rate(bus_url, ...)`: any bus profd can open by URL
(``sqlite:///…``, ``kafka://host:port?topic=…``) is measured the same way.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.ingest import templates
from profd.bus.worker import CONSUMER_GROUP
from profd.formats.message import TOPIC
from profd.services import open_bus
from profd.settings import Settings, sqlite_url
from tests.e2e.server import Server, start_server

ROOT = Path(__file__).resolve().parents[1]


def fill(server: Server, bodies: list[tuple[bytes, bytes]], count: int) -> None:
    """Post `count` envelopes, each a new profile, and check each was taken (200)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": f"Sentry sentry_key={server.public_key}, sentry_version=7",
    }
    for i in range(count):
        template, identifier = bodies[i % len(bodies)]
        # Same length, new id: the envelope's item lengths stay right.
        body = gzip.compress(template.replace(identifier, uuid.uuid4().hex.encode()[: len(identifier)]), 1)
        connection.request("POST", "/api/1/envelope/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, f"ingest answered {response.status}"
    connection.close()


def drain_rate(
    bus_url: str, data_dir: Path, processes: int, bodies: list[tuple[bytes, bytes]], count: int
) -> float:
    """Processed profiles/s of `profd worker --processes N` draining `count` profiles that
    ingest put on the bus at `bus_url` (data and index under `data_dir`)."""
    environment = {"PROFD_BUS_URL": bus_url, "PROFD_QUEUE_MAX_DEPTH": str(count + 1000)}
    server = start_server(data_dir, "--worker", "none", **environment)
    try:
        fill(server, bodies, count)
    finally:
        server.stop()
    bus = open_bus(bus_url, Settings.load(data_dir=data_dir, bus_lag_cache_seconds=0))
    queued = bus.pending(TOPIC, CONSUMER_GROUP)
    assert queued == count, f"{queued} queued, {count} expected"
    worker = subprocess.Popen(
        [sys.executable, "-m", "profd", "worker", "--data-dir", str(data_dir), "--processes", str(processes)],
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    index = server.index()

    def stored() -> int:
        return int(index.select("SELECT COUNT(*) FROM profiles")[0][0])

    try:
        # The clock starts at the first profile stored (start-up is not counted, nor is
        # that profile) and stops at the last.  Commits come in batches (a setting), so the
        # queue's lag would lag behind by up to a batch: the index says what is done.
        while (first := stored()) == 0:
            time.sleep(0.02)
        started = time.monotonic()
        deadline = started + 600
        while (done := stored()) < count:
            assert time.monotonic() < deadline, f"the workers stored {done} profiles of {count}"
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        counted = count - first
        while bus.pending(TOPIC, CONSUMER_GROUP):
            assert time.monotonic() < deadline, "the workers did not commit every message"
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        bus.close()
    return counted / elapsed


def sqlite_bus(run_dir: Path) -> str:
    return sqlite_url(run_dir / "data" / "bus.sqlite3")


def kafka_bus(brokers: str) -> Callable[[Path], str]:
    # A topic per run: each run starts from an empty topic and a group with no offsets.
    return lambda _: f"kafka://{brokers}?topic=profiles-bench-{uuid.uuid4().hex[:8]}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=300, help="profiles queued per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count (median)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--kafka", metavar="HOST:PORT", help="measure a Kafka bus instead of the local queue")
    args = parser.parse_args()
    bodies = templates(20.0)
    bus_for = kafka_bus(args.kafka) if args.kafka else sqlite_bus
    rates: dict[int, list[float]] = {n: [] for n in args.processes}
    with tempfile.TemporaryDirectory() as scratch:
        # Worker counts interleaved run by run, so that a noisy neighbour slows them alike.
        for run in range(args.runs):
            for processes in args.processes:
                run_dir = Path(scratch) / f"{processes}-{run}"
                rate = drain_rate(bus_for(run_dir), run_dir / "data", processes, bodies, args.profiles)
                rates[processes].append(rate)
                print(f"  run {run + 1}, {processes} worker processes: {rate:6.1f} profiles/s", flush=True)
    base = statistics.median(rates[args.processes[0]])
    bus = "Kafka" if args.kafka else "local queue (SQLite)"
    print(
        f"\n{bus}, {args.profiles} profiles queued per run, median of {args.runs} runs, {os.cpu_count()} cores"
    )
    print(f"{'worker processes':>16} | {'profiles/s':>10} | {'speed-up':>8} | runs")
    for processes, found in rates.items():
        median = statistics.median(found)
        shown = ", ".join(f"{r:.0f}" for r in found)
        print(f"{processes:>16} | {median:>10.1f} | {median / base:>7.2f}× | {shown}")


if __name__ == "__main__":
    main()
