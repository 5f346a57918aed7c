"""The hourly flame rollups answer exactly what summing every profile's rows answers, for any
selection, after deletions, and for an index migrated from before the rollups existed."""

from __future__ import annotations

import random
import sqlite3
import uuid
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from profd.analysis.flame import FlameNode
from profd.analysis.functions import FunctionMetrics
from profd.analysis.metadata import ProfileMetadata
from profd.query.flame_rollup import PathTotal, path_totals
from profd.query.functions import function_metrics, quantile
from profd.query.profiles import ProfileFilter
from profd.store.index import MIGRATIONS, Index
from tests.factories import function_ran, indexed_profile

BASE = 1_700_000_000.0  # a whole hour
TRANSACTIONS = ["/a", "/b", None]
RELEASES = ["1.0", "2.0"]
# A tiny call tree family: (path, parent, name) with paths unique per name chain.
TREE = [(11, 0, "main"), (12, 11, "work"), (13, 12, "leaf"), (14, 11, "idle"), (15, 14, "leaf")]


Stored = list[tuple[ProfileMetadata, list[FlameNode], list[FunctionMetrics]]]


def profiles(count: int, seed: int) -> Stored:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        start = BASE + rng.uniform(0, 5 * 3600)
        metadata = indexed_profile(
            rng.choice([1, 2]),
            uuid.UUID(int=rng.getrandbits(128)).hex,
            start,
            transaction=rng.choice(TRANSACTIONS),
            release=rng.choice(RELEASES),
            sampled=rng.random() > 0.1,
        )
        nodes = [
            FlameNode(
                path,
                parent,
                name,
                "pkg",
                True,
                depth=len(str(path)),
                sample_count=s,
                duration_ns=s * 10,
                self_time_ns=s,
            )
            for path, parent, name in rng.sample(TREE, rng.randint(1, len(TREE)))
            for s in [rng.randint(1, 50)]
        ]
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


def brute_force(stored: Stored, where: ProfileFilter) -> dict[int, PathTotal]:
    totals: dict[int, PathTotal] = {}
    for metadata, nodes, _ in stored:
        if not selected(metadata, where):
            continue
        for n in nodes:
            found = totals.setdefault(n.path, PathTotal(n.parent, n.name, n.package, n.in_app, 0, 0, 0, 0))
            found.occurrences += 1
            found.samples += n.sample_count
            found.duration_ns += n.duration_ns
            found.self_time_ns += n.self_time_ns
    return totals


bounds = st.one_of(
    st.none(), st.floats(BASE - 3600, BASE + 6 * 3600), st.integers(-1, 6).map(lambda h: BASE + h * 3600)
)
selections = st.builds(
    ProfileFilter,
    project_ids=st.one_of(st.none(), st.just([1]), st.just([1, 2])),
    transaction=st.sampled_from([None, "/a", "/b", ""]),
    release=st.sampled_from([None, "1.0", "2.0"]),
    start=bounds,
    end=bounds,
)


def test_rollups_match_the_rows_they_sum(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    stored = profiles(300, seed=1)
    for metadata, nodes, functions in stored:
        index.insert_profile(metadata, functions, nodes)
    # A redelivered profile must not be counted twice.
    assert index.insert_profile(stored[0][0], stored[0][2], stored[0][1]) is False

    @settings(max_examples=150, deadline=None)
    @given(selections)
    def check(where: ProfileFilter) -> None:
        got = path_totals(index, 1, where)
        assert got.paths == brute_force(stored, where)
        assert got.profiles == sum(1 for m, _, _ in stored if selected(m, where))
        check_functions(index, stored, where)

    check()

    # Deleting profiles takes them back out of their buckets.
    gone = [m for m, _, _ in stored[::3]]
    index.delete_profiles(gone)
    kept = stored[1::3] + stored[2::3]
    assert path_totals(index, 1, ProfileFilter()).paths == brute_force(kept, ProfileFilter())
    check_functions(index, kept, ProfileFilter())
    check_functions(index, kept, ProfileFilter(release="2.0", start=BASE + 3600))
    index.delete_profiles([m for m, _, _ in kept])
    assert index.select("SELECT COUNT(*) FROM flame_rollup")[0][0] == 0
    assert index.select("SELECT COUNT(*) FROM function_rollup")[0][0] == 0
    assert index.select("SELECT COUNT(*) FROM rollup_buckets")[0][0] == 0


def test_an_index_from_before_the_rollups_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    before_rollups = next(n for n, script in enumerate(MIGRATIONS) if "flame_rollup" in script)
    for number, script in enumerate(MIGRATIONS[:before_rollups], start=1):
        db.executescript(script)
        db.execute(f"PRAGMA user_version = {number}")
    stored = profiles(40, seed=2)
    for metadata, nodes, functions in stored:
        fields = msgspec.structs.asdict(metadata)
        columns = ", ".join(f'"{name}"' for name in fields)
        db.execute(
            f"INSERT INTO profiles ({columns}) VALUES ({', '.join('?' for _ in fields)})",
            tuple(fields.values()),
        )
        db.executemany(
            "INSERT INTO flame_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(metadata.project_id, metadata.profile_id, *msgspec.structs.astuple(n)) for n in nodes],
        )
        db.executemany(
            "INSERT INTO functions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    metadata.project_id,
                    metadata.profile_id,
                    f.fingerprint,
                    f.function,
                    f.package,
                    f.in_app,
                    f.thread_id,
                    repr(f.self_times_ns),
                    repr(f.total_times_ns),
                    f.sum_self_time_ns,
                    f.sample_count,
                    f.max_duration,
                    metadata.start,
                )
                for f in functions
            ],
        )
    db.close()
    index = Index(path)
    where = ProfileFilter(release="1.0", start=BASE + 1800)
    assert path_totals(index, 1, where).paths == brute_force(stored, where)
    assert path_totals(index, 1, ProfileFilter()).paths == brute_force(stored, ProfileFilter())
    check_functions(index, stored, ProfileFilter())
    check_functions(index, stored, where)


def check_functions(index: Index, stored: Stored, where: ProfileFilter) -> None:
    """Counts, sums and the slowest profile are exact; percentiles within the histograms' 1%;
    examples are profiles of the selection where the function ran."""
    expected: dict[int, list[tuple[int, str, int]]] = {}
    for metadata, _, functions in stored:
        if selected(metadata, where):
            for f in functions:
                expected.setdefault(f.fingerprint, []).append((f.max_duration, metadata.profile_id, 0))
                expected[f.fingerprint].extend((t, "", 1) for t in f.self_times_ns)
    got = function_metrics(index, 1, where)
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
