"""A diverse corpus: python (sample v1) transaction profiles as the sentry-sdk sends them,
from a synthetic service with real stack diversity.

The service has 3,000 functions in 150 modules (20 functions each), in four layers:
10 entry modules (the web views, in app), 40 handler modules (services, in app), 70 library
modules (site-packages, not in app) and 30 leaf modules (the standard library).  Calls go
from a layer to itself (to a function of higher rank, so the graph has no cycles) or to the
layers below; each function calls 3 to 12 others, the first ones more often (Zipf).

Each of 40 transactions (`/api/...` routes) starts at its own entry function under a fixed
server prefix (thread bootstrap, uvicorn, starlette).  A profile is about 3 s sampled at
100 Hz: its main thread runs the transaction as a program runs, each tick keeping the stack
(a loop or blocking call) or returning a few frames and calling down again, to a depth drawn
between 15 and 45 frames, so consecutive stacks share prefixes and a profile has hundreds of
distinct stacks.  One or two more threads (a thread pool worker, a background flusher) are
sampled at the same ticks, as the SDK samples every thread.

Starts are spread over 2 days; release `shop@1.0.0` runs the first 30 hours, `shop@2.0.0`
the rest.  Release 2 is slower in the functions of `REGRESSED`: while one of them is on the
stack, each tick is followed by two more samples that stop in it (its own code got slower),
so its self time grows.

Everything is seeded: profile ``i`` of seed ``s`` is the same bytes whatever ``n``.

    .venv/bin/python -m bench.corpus OUT_DIR [--count 5] [--seed 0]

writes ``profile-<i>.envelope`` files (transaction event and profile item, as the SDK sends
them) that ``profd process`` accepts.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODULES_PER_LAYER = {"entry": 10, "handler": 40, "library": 70, "leaf": 30}
FUNCTIONS_PER_MODULE = 20
TRANSACTION_COUNT = 40
RELEASES = ("shop@1.0.0", "shop@2.0.0")
BASE = 1_795_000_000.0  # 2026-11-18T...Z, a fixed origin so the corpus is deterministic
SPAN_S = 2 * 86400.0
RELEASE_2_FROM = BASE + 30 * 3600.0
HZ = 100
ENVIRONMENT = "production"

_WORDS = [
    "order",
    "cart",
    "user",
    "account",
    "invoice",
    "payment",
    "stock",
    "price",
    "tax",
    "ship",
    "refund",
    "coupon",
    "search",
    "session",
    "token",
    "cache",
    "query",
    "render",
    "parse",
    "load",
    "save",
    "fetch",
    "build",
    "check",
    "merge",
    "sort",
    "index",
    "batch",
    "event",
    "audit",
    "report",
    "export",
    "import",
    "notify",
    "email",
    "queue",
    "retry",
    "lock",
    "page",
    "filter",
]
_LIBRARIES = [
    "sqlalchemy",
    "requests",
    "urllib3",
    "jinja2",
    "pydantic",
    "starlette",
    "anyio",
    "httpx",
    "redis",
    "psycopg",
    "celery",
    "kombu",
    "boto3",
    "botocore",
    "marshmallow",
    "werkzeug",
    "attrs",
    "orjson",
    "structlog",
    "tenacity",
]
_STDLIB = [
    "json",
    "socket",
    "ssl",
    "re",
    "selectors",
    "threading",
    "queue",
    "logging",
    "decimal",
    "datetime",
    "hashlib",
    "base64",
    "uuid",
    "collections",
    "functools",
    "copy",
    "enum",
    "typing",
    "io",
    "gzip",
    "zlib",
    "email",
    "http",
    "urllib",
    "asyncio",
    "concurrent",
    "contextlib",
    "inspect",
    "weakref",
    "operator",
    "abc",
]
_SERVER_PREFIX = (  # root first: what every request thread runs under
    ("threading", "/usr/lib/python3.11/threading.py", "Thread._bootstrap", 995, False),
    ("threading", "/usr/lib/python3.11/threading.py", "Thread._bootstrap_inner", 1038, False),
    ("threading", "/usr/lib/python3.11/threading.py", "Thread.run", 975, False),
    (
        "uvicorn.protocols.http.h11_impl",
        "uvicorn/protocols/http/h11_impl.py",
        "RequestResponseCycle.run_asgi",
        406,
        False,
    ),
    ("starlette.applications", "starlette/applications.py", "Starlette.__call__", 123, False),
    (
        "starlette.middleware.errors",
        "starlette/middleware/errors.py",
        "ServerErrorMiddleware.__call__",
        186,
        False,
    ),
    (
        "sentry_sdk.integrations.asgi",
        "sentry_sdk/integrations/asgi.py",
        "SentryAsgiMiddleware._run_app",
        168,
        False,
    ),
    ("starlette.routing", "starlette/routing.py", "Router.__call__", 718, False),
    ("starlette.routing", "starlette/routing.py", "Route.handle", 276, False),
)
_POOL_PREFIX = (
    ("threading", "/usr/lib/python3.11/threading.py", "Thread._bootstrap", 995, False),
    ("threading", "/usr/lib/python3.11/threading.py", "Thread._bootstrap_inner", 1038, False),
    ("threading", "/usr/lib/python3.11/threading.py", "Thread.run", 975, False),
    ("concurrent.futures.thread", "/usr/lib/python3.11/concurrent/futures/thread.py", "_worker", 83, False),
)
_WAIT = (
    ("queue", "/usr/lib/python3.11/queue.py", "Queue.get", 171, False),
    ("threading", "/usr/lib/python3.11/threading.py", "Condition.wait", 327, False),
)


@dataclass(frozen=True)
class Function:
    id: int
    module: str
    abs_path: str
    filename: str
    name: str
    line: int
    in_app: bool
    layer: str
    # callees, most called first; calls within the layer go to higher ids only
    callees: tuple[int, ...] = ()


@dataclass
class Service:
    functions: list[Function]
    entries: list[int]  # one entry function per transaction
    transactions: list[str]
    regressed: list[int] = field(default_factory=list)

    def names(self, ids: list[int]) -> list[str]:
        return [f"{self.functions[i].module}.{self.functions[i].name}" for i in ids]


def _module(layer: str, n: int, rng: random.Random) -> tuple[str, str, str, bool]:
    """name, abs_path, filename, in_app"""
    if layer in ("entry", "handler"):
        package = "api" if layer == "entry" else "services"
        name = f"shop.{package}.{_WORDS[n % len(_WORDS)]}_{n // len(_WORDS)}"
        filename = name.replace(".", "/") + ".py"
        return name, f"/srv/shop/{filename}", filename, True
    if layer == "library":
        name = f"{_LIBRARIES[n % len(_LIBRARIES)]}.{_WORDS[(n * 7) % len(_WORDS)]}{n // len(_LIBRARIES)}"
        filename = name.replace(".", "/") + ".py"
        return name, f"/srv/shop/.venv/lib/python3.11/site-packages/{filename}", filename, False
    name = (
        f"{_STDLIB[n % len(_STDLIB)]}.{_WORDS[(n * 11) % len(_WORDS)]}" if n >= len(_STDLIB) else _STDLIB[n]
    )
    filename = name.replace(".", "/") + ".py"
    return name, f"/usr/lib/python3.11/{filename}", filename, False


def build_service(seed: int = 0) -> Service:
    rng = random.Random(f"service:{seed}")
    layers = list(MODULES_PER_LAYER)
    made: list[dict[str, Any]] = []
    for layer in layers:
        for m in range(MODULES_PER_LAYER[layer]):
            module, abs_path, filename, in_app = _module(layer, m, rng)
            line = rng.randrange(10, 60)
            for k in range(FUNCTIONS_PER_MODULE):
                verb, noun = rng.choice(_WORDS), rng.choice(_WORDS)
                cls = rng.random() < 0.6
                name = (
                    f"{noun.title()}{rng.choice(_WORDS).title()}.{verb}_{noun}" if cls else f"{verb}_{noun}"
                )
                if layer == "entry":
                    name = f"{verb}_{noun}_view"
                made.append(
                    dict(
                        id=len(made),
                        module=module,
                        abs_path=abs_path,
                        filename=filename,
                        name=f"{name}_{k}" if rng.random() < 0.3 else name,
                        line=line,
                        in_app=in_app,
                        layer=layer,
                    )
                )
                line += rng.randrange(12, 80)
    by_layer = {layer: [f["id"] for f in made if f["layer"] == layer] for layer in layers}
    # Where each layer calls: (layer, share of calls); within a layer only to higher ids.
    targets = {
        "entry": (("handler", 0.8), ("library", 0.2)),
        "handler": (("handler", 0.55), ("library", 0.4), ("leaf", 0.05)),
        "library": (("library", 0.7), ("leaf", 0.3)),
        "leaf": (("leaf", 1.0),),
    }
    functions = []
    for f in made:
        fanout = rng.randrange(3, 13) if f["layer"] != "leaf" else rng.randrange(1, 5)
        callees: list[int] = []
        for _ in range(fanout):
            choices, weights = zip(*targets[f["layer"]], strict=True)
            layer = rng.choices(choices, weights)[0]
            pool = by_layer[layer]
            if layer == f["layer"]:
                pool = pool[bisect.bisect_right(pool, f["id"]) :][:400]
            if pool:
                callee = rng.choice(pool)
                if callee not in callees:
                    callees.append(callee)
        functions.append(Function(**f, callees=tuple(callees)))
    entries = rng.sample(by_layer["entry"], TRANSACTION_COUNT)
    routes = []
    for n, entry in enumerate(entries):
        word = _WORDS[n % len(_WORDS)]
        routes.append(
            f"/api/{word}s/{{id}}/{functions[entry].name.split('_')[0]}" if n % 3 else f"/api/{word}s"
        )
    transactions = [
        f"{route}" if routes.count(route) == 1 else f"{route}/{n}" for n, route in enumerate(routes)
    ]
    # The regressed functions: the first callees of popular handlers and libraries, so most
    # transactions reach some of them.
    regressed = sorted({functions[entries[n]].callees[0] for n in range(0, 8, 2)})[:3]
    libraries = [c for e in entries[:10] for h in functions[e].callees for c in functions[h].callees]
    regressed += sorted({c for c in libraries if functions[c].layer == "library"})[:2]
    return Service(functions, entries, transactions, regressed)


SERVICE = build_service()
REGRESSED = SERVICE.names(SERVICE.regressed)


class _Frames:
    """The profile's frame table: one frame per (function, line), in first-seen order."""

    def __init__(self) -> None:
        self.index: dict[tuple[Any, ...], int] = {}
        self.frames: list[dict[str, Any]] = []

    def fixed(self, frame: tuple[str, str, str, int, bool]) -> int:
        module, path, function, line, in_app = frame
        key = ("fixed", module, function, line)
        found = self.index.get(key)
        if found is None:
            abs_path = (
                path if path.startswith("/") else f"/srv/shop/.venv/lib/python3.11/site-packages/{path}"
            )
            filename = path.removeprefix("/usr/lib/python3.11/")
            found = self.index[key] = len(self.frames)
            self.frames.append(
                {
                    "abs_path": abs_path,
                    "module": module,
                    "filename": filename,
                    "function": function,
                    "lineno": line,
                    "in_app": in_app,
                }
            )
        return found

    def function(self, f: Function, line: int) -> int:
        key = (f.id, line)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.frames)
            self.frames.append(
                {
                    "abs_path": f.abs_path,
                    "module": f.module,
                    "filename": f.filename,
                    "function": f.name,
                    "lineno": line,
                    "in_app": f.in_app,
                }
            )
        return found


def _zipf_pick(rng: random.Random, options: tuple[int, ...]) -> int:
    # weights 1, 1/sqrt(2), 1/sqrt(3), ...: the first callees are the hot ones
    return rng.choices(options, [(k + 1) ** -0.5 for k in range(len(options))])[0]


class _Walk:
    """The main thread's stack as the program runs: [(function id, current line)], root first."""

    def __init__(self, service: Service, entry: int, rng: random.Random) -> None:
        self.service, self.rng = service, rng
        self.stack: list[tuple[int, int]] = [(entry, 0)]

    def call_down(self, target: int) -> None:
        functions = self.service.functions
        while len(self.stack) < target:
            caller, _ = self.stack[-1]
            callees = functions[caller].callees
            if not callees:
                break
            remaining = target - len(self.stack)
            options = tuple(c for c in callees if functions[c].layer != "leaf" or remaining <= 2) or callees
            # Deep stacks come from calls within a layer (helpers calling helpers).
            same = tuple(c for c in options if functions[c].layer == functions[caller].layer)
            if remaining > 6 and same and self.rng.random() < 0.8:
                options = same
            callee = _zipf_pick(self.rng, options)
            call_site = functions[caller].line + 1 + (callees.index(callee) * 3) % 40 + self.rng.randrange(2)
            self.stack[-1] = (caller, call_site)
            self.stack.append((callee, 0))
        leaf, _ = self.stack[-1]
        self.stack[-1] = (leaf, functions[leaf].line + 1 + self.rng.randrange(12))

    def tick(self, prefix: int) -> None:
        rng = self.rng
        if rng.random() < 0.15:
            return  # a loop or a blocking call: the same stack again
        # Mostly a few frames return; now and then the request moves on to another phase.
        back = len(self.stack) if rng.random() < 0.08 else int(rng.expovariate(1 / 6))
        keep = max(1, len(self.stack) - 1 - back)
        del self.stack[keep:]
        self.call_down(rng.randrange(15, 46) - prefix)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _uuid(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


_ROUTE_WEIGHTS = [(k + 1) ** -0.5 for k in range(TRANSACTION_COUNT)]


def generate(i: int, seed: int = 0, service: Service = SERVICE) -> tuple[dict[str, Any], dict[str, Any]]:
    """Profile ``i`` of the corpus and its transaction event, as the SDK sends them."""
    rng = random.Random(f"profile:{seed}:{i}")
    # some routes are busier than others: weights 1, 1/sqrt(2), 1/sqrt(3), ...
    rank = rng.choices(range(TRANSACTION_COUNT), _ROUTE_WEIGHTS)[0]
    transaction = (rank * 7 + seed) % TRANSACTION_COUNT
    start = BASE + rng.uniform(0, SPAN_S)
    release = RELEASES[start >= RELEASE_2_FROM]
    regressed = set(service.regressed) if release == RELEASES[1] else set()
    frames = _Frames()
    stacks: list[list[int]] = []
    stack_ids: dict[tuple[int, ...], int] = {}

    def stack_id(ids: list[int]) -> int:
        key = tuple(reversed(ids))  # the SDK lists a stack leaf first
        found = stack_ids.get(key)
        if found is None:
            found = stack_ids[key] = len(stacks)
            stacks.append(list(key))
        return found

    server = [frames.fixed(f) for f in _SERVER_PREFIX]
    pool = [frames.fixed(f) for f in _POOL_PREFIX]
    wait = [frames.fixed(f) for f in _WAIT]
    main_thread = str(rng.randrange(139_000_000_000_000, 140_000_000_000_000))
    threads = {main_thread: "MainThread"}
    extra = rng.choices((0, 1, 2), (0.2, 0.4, 0.4))[0]
    pool_thread = str(int(main_thread) - 8_392_704) if extra >= 1 else None
    flusher = str(int(main_thread) - 16_785_408) if extra >= 2 else None
    if pool_thread:
        threads[pool_thread] = "ThreadPoolExecutor-0_0"
    if flusher:
        threads[flusher] = "sentry.monitor"
    walk = _Walk(service, service.entries[transaction], rng)
    walk.call_down(rng.randrange(15, 46) - len(server))
    worker = _Walk(service, service.entries[(transaction + 1) % TRANSACTION_COUNT], rng)
    worker_busy = rng.random() < 0.6
    samples: list[dict[str, Any]] = []
    ticks = rng.randrange(270, 331)
    elapsed = rng.randrange(200_000, 2_000_000)
    t = 0
    while t < ticks:
        walk.tick(len(server))
        ids = server + [frames.function(service.functions[f], line) for f, line in walk.stack]
        main_id = stack_id(ids)
        # In release 2 a regressed function on the stack runs its own slow code for two more
        # ticks: those samples stop at it, so its self time grows.
        hot = [k for k, (f, _) in enumerate(walk.stack) if f in regressed]
        slow_id = stack_id(ids[: len(server) + hot[-1] + 1]) if hot else main_id
        for repeat in range(3 if hot else 1):
            at = str(elapsed)
            sample_id = main_id if repeat == 0 else slow_id
            samples.append({"elapsed_since_start_ns": at, "thread_id": main_thread, "stack_id": sample_id})
            if pool_thread:
                if rng.random() < 0.1:
                    worker_busy = not worker_busy
                if worker_busy:
                    worker.tick(len(pool) + 4)
                    ids = pool + [frames.function(service.functions[f], line) for f, line in worker.stack]
                else:
                    ids = pool + wait
                samples.append(
                    {"elapsed_since_start_ns": at, "thread_id": pool_thread, "stack_id": stack_id(ids)}
                )
            if flusher:
                samples.append(
                    {
                        "elapsed_since_start_ns": at,
                        "thread_id": flusher,
                        "stack_id": stack_id(pool[:3] + wait[1:]),
                    }
                )
            elapsed += 1_000_000_000 // HZ + rng.randrange(-300_000, 900_000)
        t += 1
    duration_ns = elapsed + rng.randrange(1_000_000, 5_000_000)
    event_id, trace_id, span_id = _uuid(rng), _uuid(rng), _uuid(rng)[:16]
    event = {
        "type": "transaction",
        "event_id": event_id,
        "transaction": service.transactions[transaction],
        "transaction_info": {"source": "route"},
        "contexts": {
            "trace": {
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": None,
                "op": "http.server",
                "status": "ok",
                "origin": "auto.http.starlette",
                "data": {"thread.id": main_thread, "thread.name": "MainThread"},
            },
            "runtime": {"name": "CPython", "version": "3.11.7"},
        },
        "tags": {},
        "timestamp": _iso(start + duration_ns / 1e9),
        "start_timestamp": _iso(start),
        "spans": [],
        "measurements": {},
        "release": release,
        "environment": ENVIRONMENT,
        "server_name": f"web-{rng.randrange(8)}",
        "sdk": {"name": "sentry.python.fastapi", "version": "2.75.0"},
        "platform": "python",
    }
    profile = {
        "environment": ENVIRONMENT,
        "event_id": _uuid(rng),
        "platform": "python",
        "profile": {
            "frames": frames.frames,
            "stacks": stacks,
            "samples": samples,
            "thread_metadata": {tid: {"name": name} for tid, name in threads.items()},
        },
        "release": release,
        "timestamp": _iso(start),
        "version": "1",
        "device": {"architecture": "x86_64"},
        "os": {"name": "Linux", "version": "6.1.0"},
        "runtime": {"name": "CPython", "version": "3.11.7"},
        "transactions": [
            {
                "id": event_id,
                "name": service.transactions[transaction],
                "relative_start_ns": "0",
                "relative_end_ns": str(duration_ns),
                "trace_id": trace_id,
                "active_thread_id": main_thread,
            }
        ],
    }
    return profile, event


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def items(n: int, seed: int = 0) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The first ``n`` profiles (JSON) with their transaction events (the metadata Relay
    merges into a transaction profile)."""
    for i in range(n):
        profile, event = generate(i, seed)
        yield _encode(profile), event


def profiles(n: int, seed: int = 0) -> Iterator[bytes]:
    """The first ``n`` profiles of the corpus, as JSON."""
    for payload, _ in items(n, seed):
        yield payload


def envelope(profile: bytes, transaction: dict[str, Any]) -> bytes:
    """The envelope the SDK sends: the transaction event and its profile."""
    event = _encode(transaction)
    header = {"event_id": transaction["event_id"], "sent_at": transaction["timestamp"]}
    parts = [
        _encode(header),
        _encode({"type": "transaction", "length": len(event)}),
        event,
        _encode({"type": "profile", "length": len(profile)}),
        profile,
    ]
    return b"\n".join(parts) + b"\n"


def shape(profile: bytes) -> dict[str, float]:
    """What a profile holds: bytes, samples, threads, distinct stacks and frames, depth."""
    document = json.loads(profile)["profile"]
    used = {s["stack_id"] for s in document["samples"]}
    depths = [len(document["stacks"][s]) for s in used]
    main = {
        s["stack_id"]
        for s in document["samples"]
        if document["thread_metadata"][s["thread_id"]]["name"] == "MainThread"
    }
    return {
        "bytes": len(profile),
        "samples": len(document["samples"]),
        "threads": len(document["thread_metadata"]),
        "stacks": len(used),
        "main thread stacks": len(main),
        "frames": len(document["frames"]),
        "min depth": min(depths),
        "main thread min depth": min(len(document["stacks"][s]) for s in main),
        "max depth": max(depths),
        "mean depth": sum(depths) / len(depths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (payload, event) in enumerate(itertools.islice(items(args.count, args.seed), args.count)):
        (args.out / f"profile-{i}.envelope").write_bytes(envelope(payload, event))
        print(i, event["transaction"], event["release"], shape(payload))


if __name__ == "__main__":
    main()
