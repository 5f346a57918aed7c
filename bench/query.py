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

The diverse corpus (bench.corpus: 3,000 functions, 40 transactions, 2 releases over 2 days,
hundreds of distinct stacks 15-45 frames deep per profile, ~300 KB each) goes through
profd's own pipeline, as `profd process` runs it: ingest's expansion with the transaction
event, the stages of process_profile_task, analyse, then the blob and the index, each part
timed, for --pipeline profiles (default 2,000), beside vroomrs's write path on
--vroom-sample of the same processed profiles.  Each size is then indexed afresh from
those processed profiles, the pool, and copies of them with fresh ids and start times in
their release's span (generating and processing 100,000 would take hours).  For each size
the benchmark prints the indexing rate against vroomrs's write path, index bytes per
profile (and per table), the latency (median of --repeat runs, fewer when a run passes
--budget seconds) and answer size of the aggregate flamegraph (all profiles, one
transaction, one day), the differential flamegraph of the two releases and the functions
table, and how far each flamegraph's merged tree is from the exact merge of the same
profiles' whole call trees (folded again from their blobs), against its stated bound.

    .venv/bin/python -m bench.query --corpus diverse|templates|both [--sizes 10000 100000]

Without --sizes, the templates run at 10,000 and 100,000 profiles, the diverse corpus at 1,000.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from bench import corpus
from bench.write_path import inputs, vroomrs_write
from profd.analysis.flame import fold
from profd.analysis.profile_functions import call_trees
from profd.formats import Kind, encode_message, flame_tree
from profd.formats.rows import ProcessedProfile
from profd.gc_pause import gc_paused
from profd.ingest.submit import ProfileItem, to_message
from profd.pipeline.analyse import analyse_profile
from profd.pipeline.task import STAGES, TaskRun, analyse_call_trees
from profd.query.flame_rollup import merged_tree
from profd.query.flamegraph import differential, flamegraph
from profd.query.functions import function_table
from profd.query.profiles import ProfileFilter
from profd.services import open_services
from profd.settings import Settings
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
        flame = dataclasses.replace(
            template.flame,
            duration_ns=(template.flame.duration_ns * scale).astype(np.int64),
            self_time_ns=(template.flame.self_time_ns * scale).astype(np.int64),
        )
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
    trees = []
    rows = sql(index, "SELECT blob_key, kind FROM profiles ORDER BY rowid LIMIT ?", (limit,))
    for row in rows:
        profile = _decoder.decode(decompress(blobs.get(row["blob_key"])))
        trees.append(fold(call_trees(profile, Kind(row["kind"])), budget=1 << 30))
    return len(flame_tree.merge(trees))


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
    index_bytes = sum(p.stat().st_size for p in root.glob(f"index-{size}.sqlite3*"))
    print(
        f"\n{size:,} profiles (indexed in {filled:.0f} s, {size / filled:.0f}/s):"
        f" index {index_bytes / size / 1e3:,.1f} KB per profile"
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


def runs(fn: Callable[[], Any], repeat: int, budget: float) -> tuple[float, Any, int]:
    """Median seconds of up to `repeat` runs (fewer once they pass `budget` seconds in all),
    the last answer and how many runs there were."""
    times: list[float] = []
    answer: Any = None
    while len(times) < repeat and sum(times) < budget:
        began = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), answer, len(times)


class Pool(msgspec.Struct):
    """The pipeline's profiles, kept to index again as copies and to merge exactly."""

    rows: list[tuple[Any, Any, Any]] = msgspec.field(default_factory=list)  # metadata, functions, flame
    blob_keys: list[str] = msgspec.field(default_factory=list)


def run_pipeline(root: Path, count: int, seed: int, vroom_sample: int) -> dict[str, Any]:
    """`count` profiles of the diverse corpus through profd's pipeline as `profd process`
    runs it, each part timed; every (count / vroom_sample)-th processed profile also through
    vroomrs's write path.  The processed profiles are kept (the pool) for `index_pool`."""
    services = open_services(Settings.load(data_dir=root))
    organization, project = services.default_project()
    context = services.task_context()
    before = STAGES[: STAGES.index(analyse_call_trees)]
    parts = dict.fromkeys(("ingest", "stages", "analyse", "blob", "index"), 0.0)
    processed_count = count
    every = max(1, processed_count // vroom_sample)
    vroom = profd_same = 0.0
    compared = 0
    shapes: list[dict[str, float]] = []
    functions: set[tuple[str, str]] = set()
    transactions: Counter[str] = Counter()
    corpus_bytes = 0
    pool = Pool()
    for n, (payload, event) in enumerate(corpus.items(processed_count, seed)):
        transactions[event["transaction"]] += 1
        corpus_bytes += len(payload)
        if n % every == 0:
            shapes.append(corpus.shape(payload))
            functions.update((f["module"], f["function"]) for f in json.loads(payload)["profile"]["frames"])
        t0 = time.perf_counter()
        item = ProfileItem(payload=payload, item_type="profile", platform="python", transaction=event)
        received = int(corpus.BASE + corpus.SPAN_S + 3600)
        message = to_message(item, organization_id=organization.id, project_id=project.id, received=received)
        task = TaskRun(context=context, payload=encode_message(message), sampled=True)
        t1 = time.perf_counter()
        with gc_paused():
            for step in before:
                step(task)
        t2 = time.perf_counter()
        text = msgspec.json.encode(task.profile).decode() if n % every == 0 else None
        t3 = time.perf_counter()
        # analyse, then what ProfileStore.push does, each part timed on its own
        with gc_paused():
            analyse_call_trees(task)
            processed = task.processed
            assert processed is not None
            t4 = time.perf_counter()
            blob = encode_blob(processed.document)
            services.blobs.put_if_absent(processed.metadata.blob_key, blob)
            t5 = time.perf_counter()
            services.index.insert_profile(processed.metadata, processed.functions, processed.flame)
            t6 = time.perf_counter()
        parts["ingest"] += t1 - t0
        parts["stages"] += t2 - t1
        parts["analyse"] += t4 - t3
        parts["blob"] += t5 - t4
        parts["index"] += t6 - t5
        pool.rows.append((processed.metadata, processed.functions, processed.flame))
        pool.blob_keys.append(processed.metadata.blob_key)
        if text is not None:
            del task, processed
            began = time.perf_counter()
            vroomrs_write(text, Kind.SAMPLE_V1, "1", "python")
            vroom += time.perf_counter() - began
            profd_same += t6 - t3
            compared += 1
    return {
        "services": services,
        "organization": organization.id,
        "parts": parts,
        "processed": processed_count,
        "vroom": vroom / compared,
        "profd_same": profd_same / compared,
        "compared": compared,
        "shapes": shapes,
        "functions": len(functions),
        "transactions": transactions,
        "corpus_bytes": corpus_bytes,
        "pool": pool,
    }


def index_pool(data_dir: Path, pool: Pool, size: int, seed: int) -> dict[str, Any]:
    """A fresh index of `size` profiles: the pool's, then the pool's again as copies with
    fresh ids and start times in their release's span (generating and processing 100,000
    takes hours; the index sees every copy as a profile of its own)."""
    services = open_services(Settings.load(data_dir=data_dir))
    rng = random.Random(seed)
    transactions: Counter[str] = Counter()
    sources: list[tuple[int, Any]] = []
    seconds = 0.0
    for n in range(size):
        source = n % len(pool.rows)
        metadata, functions_rows, flame = pool.rows[source]
        if n >= len(pool.rows):
            late = metadata.release == corpus.RELEASES[1]
            low, high = (
                (corpus.RELEASE_2_FROM, corpus.BASE + corpus.SPAN_S)
                if late
                else (corpus.BASE, corpus.RELEASE_2_FROM)
            )
            start = rng.uniform(low, high - 10)
            metadata = msgspec.structs.replace(
                metadata,
                profile_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                start=start,
                end=start + (metadata.end - metadata.start),
            )
        transactions[metadata.transaction_name or ""] += 1
        began = time.perf_counter()
        with gc_paused():
            services.index.insert_profile(metadata, functions_rows, flame)
        seconds += time.perf_counter() - began
        sources.append((source, metadata))
    return {"services": services, "sources": sources, "seconds": seconds, "transactions": transactions}


def exact_merge(services: Any, pool: Pool, sources: list[tuple[int, Any]], where: ProfileFilter) -> Any:
    """The selection's whole call trees (every path, no budget) merged: what the bounded
    trees are compared with.  Each pool profile is folded again from its blob once and
    counted as often as it was indexed in the selection."""
    counts: Counter[int] = Counter(source for source, metadata in sources if _selected(metadata, where))
    trees = []
    for source, count in counts.items():
        profile = _decoder.decode(decompress(services.blobs.get(pool.blob_keys[source])))
        whole = fold(call_trees(profile, Kind.SAMPLE_V1), budget=1 << 30)
        trees.append(
            dataclasses.replace(
                whole,
                **{
                    name: getattr(whole, name) * count
                    for name in ("occurrences", "samples", "duration_ns", "self_time_ns")
                },
            )
        )
    return flame_tree.merge(trees)


def _selected(metadata: Any, where: ProfileFilter) -> bool:
    return (
        (where.transaction is None or metadata.transaction_name == where.transaction)
        and (where.release is None or metadata.release == where.release)
        and (where.start is None or metadata.start >= where.start)
        and (where.end is None or metadata.start < where.end)
    )


def accuracy(stored: Any, exact: Any) -> str:
    """How far the merged bounded trees are from the exact merge: the stated bound (`lost`),
    the largest error seen, and how much of what a flamegraph shows (nodes of at least 0.1%
    of the samples) is there, and how exactly."""
    total = exact.total_samples
    truth = dict(zip(exact.path.tolist(), exact.samples.tolist(), strict=True))
    errors = [
        truth.get(path, 0) - samples
        for path, samples, frame in zip(
            stored.path.tolist(), stored.samples.tolist(), stored.frame.tolist(), strict=True
        )
        if frame != flame_tree.OTHER_FRAME
    ]
    assert all(0 <= e <= stored.lost for e in errors), "a node outside the stated bound"
    assert stored.total_samples == total, "totals differ"
    here = dict(zip(stored.path.tolist(), stored.samples.tolist(), strict=True))
    shown = []
    for share in (0.01, 0.001):
        visible = [(path, samples) for path, samples in truth.items() if samples >= total * share]
        found = [(samples - here[path]) / samples for path, samples in visible if path in here]
        shown.append(
            f"nodes >= {share:.1%}: {len(found)}/{len(visible)} present, largest relative error {max(found, default=0):.1%}"
        )
    return (
        f"total exact; bound {stored.lost / total:.2%} of samples, largest error {max(errors, default=0) / total:.3%};"
        f" {'; '.join(shown)}"
    )


def table_sizes(path: Path, size: int) -> str:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name HAVING SUM(pgsize) > 0 ORDER BY 2 DESC LIMIT 8"
        ).fetchall()
    finally:
        db.close()
    return ", ".join(f"{name} {pages / size / 1e3:.1f}" for name, pages in rows)


def print_pipeline(filled: dict[str, Any]) -> None:
    parts, shapes, processed = filled["parts"], filled["shapes"], filled["processed"]

    def spread(key: str) -> str:
        values = [s[key] for s in shapes]
        return f"{statistics.median(values):,.0f} (min {min(values):,.0f}, max {max(values):,.0f})"

    print(
        f"\n{processed:,} diverse profiles through the pipeline ({filled['corpus_bytes'] / 1e6:,.0f} MB of JSON);"
        f" shape measured on {len(shapes)}:"
    )
    print(f"  functions seen: {filled['functions']:,}; transactions: {len(filled['transactions'])}")
    print(
        f"  bytes per profile: {spread('bytes')}; samples: {spread('samples')}; threads: {spread('threads')}"
    )
    print(
        f"  distinct stacks per profile: {spread('stacks')}, on the main thread {spread('main thread stacks')}"
    )
    print(
        f"  frames per profile: {spread('frames')}; main-thread stacks from {spread('main thread min depth')}"
        f" to {spread('max depth')} frames deep"
    )
    total = sum(parts.values())
    write = parts["analyse"] + parts["blob"] + parts["index"]
    vroom_rate = 1 / filled["vroom"]
    print(f"  end to end (ingest, stages, analyse, blob, index): {processed / total:8.1f} profiles/s")
    for name, seconds in parts.items():
        print(f"    {name:<10} {seconds / processed * 1000:9.2f} ms per profile ({seconds / total:4.0%})")
    index_rate = processed / parts["index"]
    print(
        f"  indexing (index insert): {index_rate:8.1f} profiles/s,"
        f" ratio to vroomrs's write path {index_rate / vroom_rate:.1f}"
    )
    print(f"  profd write path (analyse + blob + index): {processed / write:8.1f} profiles/s")
    print(
        f"  vroomrs write path (parse, normalize, function metrics, compress): {vroom_rate:8.1f} profiles/s"
        f" on {filled['compared']} of the same processed profiles;"
        f" profd's write path on those: {1 / filled['profd_same']:.1f}/s,"
        f" ratio profd/vroomrs {filled['vroom'] / filled['profd_same']:.2f};"
        f" end to end / vroomrs {processed / total / vroom_rate:.2f}"
    )


def measure_diverse(
    root: Path, size: int, filled: dict[str, Any], seed: int, repeat: int, budget: float
) -> None:
    data_dir = root / f"diverse-{size}"
    organization = filled["organization"]
    indexed = index_pool(data_dir, filled["pool"], size, seed)
    services = indexed["services"]
    vroom_rate = 1 / filled["vroom"]
    rate = size / indexed["seconds"]
    print(
        f"\n{size:,} diverse profiles ({min(size, filled['processed']):,} from the pipeline, the rest copies):"
        f" indexed at {rate:,.0f} profiles/s, ratio to vroomrs's write path {rate / vroom_rate:.1f}"
    )
    services.close()
    index_file = data_dir / "index.sqlite3"
    index_bytes = sum(p.stat().st_size for p in data_dir.glob("index.sqlite3*"))
    print(f"  index: {index_bytes / 1e6:,.1f} MB, {index_bytes / size / 1e3:,.1f} KB per profile")
    print(f"    KB per profile by table: {table_sizes(index_file, size)}")
    services = open_services(Settings.load(data_dir=data_dir))
    reads = services.reads
    busiest, count = indexed["transactions"].most_common(1)[0]
    releases = corpus.RELEASES
    selections = {
        "all profiles": ProfileFilter(),
        f"1 transaction ({count} profiles)": ProfileFilter(transaction=busiest),
        "1 day": ProfileFilter(start=corpus.BASE, end=corpus.BASE + DAY),
    }
    queries: dict[str, Callable[[], Any]] = {
        f"aggregate flamegraph, {name}": partial(flamegraph, reads, organization, where)
        for name, where in selections.items()
    }
    queries[f"differential flamegraph, {releases[0]} vs {releases[1]}"] = partial(
        differential,
        reads,
        organization,
        ProfileFilter(release=releases[0]),
        ProfileFilter(release=releases[1]),
    )
    queries["functions table, all profiles"] = partial(function_table, reads, organization, ProfileFilter())
    print(f"  {'query':<54} {'latency':>12} {'answer':>10}")
    for name, query in queries.items():
        seconds, answer, done = runs(query, repeat, budget)
        size_bytes = len(msgspec.json.encode(answer))
        print(f"  {name:<54} {seconds * 1000:9.0f} ms {size_bytes / 1e6:8.2f} MB  (median of {done})")
    print("  against the exact merge of the same profiles' whole call trees:")
    for name, where in selections.items():
        stored = merged_tree(reads, organization, where).tree
        exact = exact_merge(filled["services"], filled["pool"], indexed["sources"], where)
        print(f"    {name:<40} {accuracy(stored, exact)}")
    services.close()


def sql_file(path: Path, query: str) -> Any:
    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchone()[0]
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=("diverse", "templates", "both"), default="both")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="default: 10000 100000 templates, 1000 diverse"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of runs per diverse query")
    parser.add_argument("--blob-sample", type=int, default=300)
    parser.add_argument("--vroom-sample", type=int, default=100)
    parser.add_argument(
        "--pipeline",
        type=int,
        default=2000,
        help="diverse profiles generated and processed; the rest are copies",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if args.corpus in ("templates", "both"):
            print("templates from real SDK captures:")
            sources = templates(root / "templates")
            for size in args.sizes or [10_000, 100_000]:
                measure(root, size, sources, args.repeat, args.blob_sample)
        if args.corpus in ("diverse", "both"):
            print(f"\ndiverse corpus (bench.corpus, seed {args.seed}); release 2 is slower in:")
            for name in corpus.REGRESSED:
                print(f"  {name}")
            sizes = args.sizes or [1_000]
            filled = run_pipeline(
                root / "diverse-pool", min(args.pipeline, max(sizes)), args.seed, args.vroom_sample
            )
            print_pipeline(filled)
            for size in sizes:
                measure_diverse(root, size, filled, args.seed, args.repeat, args.budget)
            filled["services"].close()


if __name__ == "__main__":
    main()
