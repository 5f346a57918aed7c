"""Read path: aggregate flamegraph, functions table and differential flamegraph over 10,000
and 100,000 profiles, from the index, against building the same flamegraph the way vroom
does (fetch every profile's blob, decompress, decode, build call trees, merge).

Profiles are generated from real SDK captures (the python transaction and chunk captured by
bench.write_path, and the node captures in ../shared when present): each copy gets its own
id, a start spread over 7 days, one of 20 transactions (each transaction keeps one capture's
call-tree shape, as an endpoint runs the same code), release 1.0 or 1.1 (before and after
the midpoint) and its durations scaled by a random factor, so percentiles are not constant.

    .venv/bin/python -m bench.query [--sizes 10000 100000] [--repeat 5] [--blob-sample 300]

Prints for each size the median latency of each query over --repeat runs, the blob path's
time (measured on --blob-sample profiles and scaled linearly to the size: merging blobs is
one independent decode per profile) and the ratio blob path / index path.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from bench.write_path import inputs
from profd.analysis.flame import fold
from profd.analysis.profile_functions import call_trees
from profd.formats import Kind
from profd.formats.rows import FlameNode, ProcessedProfile
from profd.pipeline.analyse import analyse_profile
from profd.query.flamegraph import differential, flamegraph
from profd.query.functions import function_table
from profd.query.profiles import ProfileFilter
from profd.store.blobs import BlobStore
from profd.store.profiles import decompress, encode_blob
from profd.store.sqlite import SqliteBackend

DAY = 86400
TRANSACTIONS = [f"/api/endpoint-{n}" for n in range(20)]
_decoder = msgspec.json.Decoder()


def sql(index: SqliteBackend, query: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """What the benchmark reports about the index file, read with a connection of its own."""
    db = sqlite3.connect(index.path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(query, params).fetchall()
    finally:
        db.close()


def templates(scratch: Path) -> list[tuple[ProcessedProfile, bytes]]:
    """Each capture analysed, with its blob."""
    made = []
    for name, (profile, kind) in inputs(seconds=20, fresh=False, scratch=scratch).items():
        if kind is Kind.ANDROID or "android" in name:
            continue  # android traces are a different shape; the python and node captures suffice
        processed = analyse_profile(msgspec.json.decode(msgspec.json.encode(profile)), kind, 90)
        made.append((processed, encode_blob(processed.document)))
        print(
            f"  template: {name}: {len(made[-1][0].flame)} call-tree paths, {len(made[-1][0].functions)} functions"
        )
    return made


def fill(
    index: SqliteBackend,
    blobs: BlobStore,
    count: int,
    sources: list[tuple[ProcessedProfile, bytes]],
    blob_sample: int,
) -> float:
    rng = random.Random(count)
    base = 1_780_000_000.0
    began = time.perf_counter()
    for n in range(count):
        # An endpoint runs the same code each time: its transaction decides its call-tree shape.
        transaction = rng.randrange(len(TRANSACTIONS))
        template, blob = sources[transaction % len(sources)]
        scale = rng.uniform(0.5, 2.0)
        start = base + rng.uniform(0, 7 * DAY)
        metadata = msgspec.structs.replace(
            template.metadata,
            profile_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            start=start,
            end=start + template.metadata.duration_ns / 1e9,
            transaction_name=TRANSACTIONS[transaction],
            release="1.0" if start < base + 3.5 * DAY else "1.1",
            environment="production",
        )
        metadata = msgspec.structs.replace(metadata, blob_key=f"{metadata.project_id}/{metadata.profile_id}")
        flame = [
            msgspec.structs.replace(
                node, duration_ns=int(node.duration_ns * scale), self_time_ns=int(node.self_time_ns * scale)
            )
            for node in template.flame
        ]
        functions = [
            msgspec.structs.replace(
                f,
                self_times_ns=[int(t * scale) for t in f.self_times_ns],
                sum_self_time_ns=int(f.sum_self_time_ns * scale),
            )
            for f in template.functions
        ]
        index.insert_profile(metadata, functions, flame)
        if n < blob_sample:
            blobs.put_if_absent(metadata.blob_key, blob)
    return time.perf_counter() - began


def merge_blobs(index: SqliteBackend, blobs: BlobStore, limit: int) -> int:
    """vroom's way: every selected profile's blob fetched, decompressed, decoded, its call
    trees built and merged into one tree."""
    merged: dict[int, FlameNode] = {}
    rows = sql(index, "SELECT blob_key, kind FROM profiles ORDER BY rowid LIMIT ?", (limit,))
    for row in rows:
        profile = _decoder.decode(decompress(blobs.get(row["blob_key"])))
        for node in fold(call_trees(profile, Kind(row["kind"]))):
            found = merged.get(node.path)
            merged[node.path] = (
                node
                if found is None
                else msgspec.structs.replace(
                    found,
                    sample_count=found.sample_count + node.sample_count,
                    duration_ns=found.duration_ns + node.duration_ns,
                )
            )
    return len(merged)


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(
    root: Path, size: int, sources: list[tuple[ProcessedProfile, bytes]], repeat: int, blob_sample: int
) -> None:
    index = SqliteBackend(root / f"index-{size}.sqlite3")
    blobs = BlobStore((root / f"blobs-{size}").as_uri())
    organization = sources[0][0].metadata.organization_id
    filled = fill(index, blobs, size, sources, blob_sample)
    rollup_rows = sql(index, "SELECT COUNT(*) FROM flame_rollup")[0][0]
    node_rows = sql(index, "SELECT COUNT(*) FROM flame_nodes")[0][0]
    print(
        f"\n{size:,} profiles (indexed in {filled:.0f} s, {size / filled:.0f}/s):"
        f" {node_rows:,} per-profile call-tree rows, {rollup_rows:,} rollup rows"
    )
    everything = ProfileFilter()
    first = sql(index, "SELECT MIN(start) FROM profiles")[0][0]
    one_day = ProfileFilter(transaction=TRANSACTIONS[3], start=first + 2.25 * DAY, end=first + 3.25 * DAY)
    queries: dict[str, Callable[[], Any]] = {
        "aggregate flamegraph, all profiles": partial(flamegraph, index, organization, everything),
        "aggregate flamegraph, 1 transaction, 1 day": partial(flamegraph, index, organization, one_day),
        "functions table, all profiles": partial(function_table, index, organization, everything),
        "differential flamegraph, release 1.0 vs 1.1": partial(
            differential, index, organization, ProfileFilter(release="1.0"), ProfileFilter(release="1.1")
        ),
    }
    results = {name: median_time(query, repeat) for name, query in queries.items()}
    sample = min(blob_sample, size)
    blob_time = median_time(partial(merge_blobs, index, blobs, sample), max(1, repeat // 2))
    blob_scaled = blob_time / sample * size
    for name, seconds in results.items():
        print(f"  {name:<46} {seconds * 1000:9.1f} ms  (median of {repeat})")
    aggregate = results["aggregate flamegraph, all profiles"]
    print(
        f"  {'blob merging (vroom), all profiles':<46} {blob_scaled * 1000:9.1f} ms"
        f"  ({blob_time / sample * 1000:.2f} ms per profile over {sample}, scaled to {size:,})"
    )
    print(f"  ratio blob merging / aggregate flamegraph: {blob_scaled / aggregate:,.0f}x")
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--blob-sample", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        print("templates from real SDK captures:")
        sources = templates(root / "templates")
        for size in args.sizes:
            measure(root, size, sources, args.repeat, args.blob_sample)


if __name__ == "__main__":
    main()
