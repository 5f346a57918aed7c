"""The real sentry-sdk as a client: run a CPU-bound workload under profiling, capture what it sends.

Used by tests (a few seconds) and by the benchmarks (20 seconds) alike.  The capture side is
a plain HTTP server on loopback that answers like Relay and keeps each decompressed body.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from profd.formats.encoding import decode_body

WORKLOAD = textwrap.dedent(
    """
    import json, sys, time
    import sentry_sdk

    dsn, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    options = {"traces_sample_rate": 1.0, "release": "workload@1.0.0", "environment": "test"}
    if mode == "transaction":
        options["profiles_sample_rate"] = 1.0
    else:
        options.update(profile_session_sample_rate=1.0, profile_lifecycle="trace")
    sentry_sdk.init(dsn=dsn, **options)

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def render(rows):
        return json.dumps([{"id": i, "name": str(i) * 8} for i in range(rows)])

    def crunch():
        return sorted(str(i)[::-1] for i in range(20000))

    def handle_request(i):
        fib(15 + i % 4)
        render(200 + 50 * (i % 3))
        if i % 2:
            crunch()

    with sentry_sdk.start_transaction(name=f"workload-{mode}", op="task"):
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            handle_request(i)
            i += 1
    time.sleep(2)  # the continuous profiler sends its chunk from its own thread, after the transaction
    sentry_sdk.flush()
    """
)


class _Capture(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.bodies.append(decode_body(body, self.headers.get("Content-Encoding"), 50 << 20))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": null}')

    def log_message(self, *args: Any) -> None:
        pass


MODES = ("transaction", "continuous")


def run_workload(dsn: str, directory: Path, seconds: float, modes: tuple[str, ...] = MODES) -> None:
    """Run the workload once per profiling mode, in parallel, sending to `dsn`."""
    program = directory / "workload.py"
    program.write_text(WORKLOAD)
    runs = [subprocess.Popen([sys.executable, str(program), dsn, mode, str(seconds)]) for mode in modes]
    for run in runs:
        assert run.wait(timeout=seconds + 120) == 0, "the sentry-sdk workload failed"


def capture_envelopes(directory: Path, seconds: float, modes: tuple[str, ...] = MODES) -> list[Path]:
    """Run the workload against a capture server; save every envelope sent."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    _Capture.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run_workload(f"http://public@127.0.0.1:{server.server_address[1]}/1", directory, seconds, modes)
    finally:
        server.shutdown()
    paths = []
    for i, body in enumerate(_Capture.bodies):
        path = directory / f"envelope-{i}.bin"
        path.write_bytes(body)
        paths.append(path)
    return paths
