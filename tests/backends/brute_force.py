"""Random profiles and what summing their rows one by one answers: the oracle the rollup
reads are checked against (tests/backends/test_index.py, and migrated SQLite files)."""

from __future__ import annotations

import math
import random
import uuid

from profd.formats.flame_tree import FlameTree, merge
from profd.formats.rows import FunctionMetrics, ProfileMetadata
from profd.query.functions import function_metrics
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter
from tests.factories import by_path, flame_of, function_ran, indexed_profile

BASE = 1_699_999_200.0  # a whole hour (selections on hour boundaries take the rollups whole)
TRANSACTIONS = ["/a", "/b", None]
RELEASES = ["1.0", "2.0"]
# A tiny call tree family: the stacks samples end in.
STACKS = [("main",), ("main", "work"), ("main", "work", "leaf"), ("main", "idle"), ("main", "idle", "leaf")]

Stored = list[tuple[ProfileMetadata, FlameTree, list[FunctionMetrics]]]


def profiles(count: int, seed: int, hours: float = 5) -> Stored:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        start = BASE + rng.uniform(0, hours * 3600)
        metadata = indexed_profile(
            rng.choice([1, 2]),
            uuid.UUID(int=rng.getrandbits(128)).hex,
            start,
            transaction=rng.choice(TRANSACTIONS),
            release=rng.choice(RELEASES),
            sampled=rng.random() > 0.1,
        )
        nodes = flame_of(
            {stack: rng.randint(1, 50) for stack in rng.sample(STACKS, rng.randint(1, len(STACKS)))}
        )
        functions = [
            function_ran(fingerprint, times, package="pkg")
            for fingerprint in rng.sample([1, 2, 3], rng.randint(0, 3))
            for times in [[rng.randint(1, 10**9) for _ in range(rng.randint(1, 4))]]
        ]
        made.append((metadata, nodes, functions))
    return made


def selected(metadata: ProfileMetadata, where: ProfileFilter) -> bool:
    return not (
        not metadata.sampled
        or (where.project_ids and metadata.project_id not in where.project_ids)
        or (where.transaction is not None and metadata.transaction_name != where.transaction)
        or (where.release is not None and metadata.release != where.release)
        or (where.start is not None and metadata.start < where.start)
        or (where.end is not None and metadata.start >= where.end)
    )


def brute_force(stored: Stored, where: ProfileFilter) -> dict[int, tuple[int, int, int, int, int]]:
    """The selection's trees merged exactly, node by node (what the rollups must answer
    while every tree is within the budgets)."""
    return by_path(merge([tree for metadata, tree, _ in stored if selected(metadata, where)]))


def quantile(ordered: list[int], q: float) -> int:
    """Nearest rank: the value at ceil(n*q) - 1 of the sorted values (0 for none)."""
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)] if ordered else 0


def check_functions(reads: ProfileReads, stored: Stored, where: ProfileFilter) -> None:
    """Counts, sums and the slowest profile are exact; percentiles within the histograms' 1%;
    examples are profiles of the selection where the function ran."""
    expected: dict[int, list[tuple[int, str, int]]] = {}
    for metadata, _, functions in stored:
        if selected(metadata, where):
            for f in functions:
                expected.setdefault(f.fingerprint, []).append((f.max_duration, metadata.profile_id, 0))
                expected[f.fingerprint].extend((t, "", 1) for t in f.self_times_ns)
    got = function_metrics(reads, 1, where)
    assert set(got) == set(expected)
    for fingerprint, row in got.items():
        times = sorted(t for t, _, is_time in expected[fingerprint] if is_time)
        worst = max((d, p) for d, p, is_time in expected[fingerprint] if not is_time)
        ran_in = {p for _, p, is_time in expected[fingerprint] if not is_time}
        assert row.worst is not None
        assert (row.count, row.sum, row.worst.profile_id) == (len(times), sum(times), worst[1])
        examples = {e.profile_id for e in row.examples}
        assert examples <= ran_in and len(examples) == len(row.examples) == min(5, len(ran_in))
        assert {e.project_id for e in row.examples} <= {m.project_id for m, _, _ in stored}
        for q, value in ((0.5, row.p50), (0.95, row.p95), (0.99, row.p99)):
            exact = quantile(times, q)
            assert abs(value - exact) <= 0.01 * exact + 1
