"""Regressions: a function whose p95 (or self time per profile) rose between two windows."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from profd.query.profiles import ProfileFilter
from profd.query.regressions import regressions
from profd.store.sqlite import SqliteBackend
from tests.factories import function_ran, indexed_profile

DAY = 86400.0
BEFORE = 1_700_000_000.0
AFTER = BEFORE + DAY


def fill(index: SqliteBackend) -> dict[str, float]:
    rng = random.Random(7)
    starts = {}
    for window, slower in ((BEFORE, 1), (AFTER, 2)):
        for n in range(40):
            start = window + n * 600 + rng.random()
            profile_id = uuid.UUID(int=rng.getrandbits(128)).hex
            starts[profile_id] = start
            functions = [
                # f1 doubles in the second window; f2 stays; f3 doubles but runs twice in all.
                function_ran(1, [rng.randint(900_000, 1_100_000) * slower for _ in range(3)]),
                function_ran(2, [rng.randint(900_000, 1_100_000) for _ in range(3)]),
            ]
            if n < 1:
                functions.append(function_ran(3, [1_000_000 * slower]))
            index.insert_profile(
                indexed_profile(
                    5,
                    profile_id,
                    start,
                    transaction="/checkout",
                    release="1.0" if window == BEFORE else "1.1",
                ),
                functions,
            )
    return starts


def test_only_the_function_that_got_slower_is_reported(tmp_path: Path) -> None:
    index = SqliteBackend(tmp_path / "i.sqlite3")
    starts = fill(index)
    before = ProfileFilter(start=BEFORE, end=BEFORE + DAY)
    after = ProfileFilter(start=AFTER, end=AFTER + DAY)
    found = regressions(index, 1, before, after)
    assert [r.name for r in found] == ["f1"]
    [f1] = found
    assert 0.8 < f1.change < 1.2  # p95 doubled, within the histogram's 1%
    assert f1.before.count == f1.after.count == 120
    assert all(e.project_id == 5 and starts[e.profile_id] >= AFTER for e in f1.examples)
    # By release, and by self time per profile: the same answer.
    by_release = regressions(
        index, 1, ProfileFilter(release="1.0"), ProfileFilter(release="1.1"), metric="sum"
    )
    assert [r.name for r in by_release] == ["f1"]
    # The other way round nothing got slower; a high bar reports nothing either.
    assert regressions(index, 1, after, before) == []
    assert regressions(index, 1, before, after, threshold=1.5) == []
    # Rare functions are not judged: with a low bar on occurrences f3 shows up too.
    assert {r.name for r in regressions(index, 1, before, after, min_count=1)} == {"f1", "f3"}
