"""The `ProfileIndex` and `ProfileReads` conformance suite, on every implementation
(conftest.py): what is written reads back, the hourly and daily rollups answer exactly what
merging every profile's rows answers for any selection and after deletions while trees fit
the budgets, and within the stated bound when they do not, and outcomes count once."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profd.formats.flame_tree import DAY_NODES, HOUR_NODES, OTHER_FRAME, frame_id, merge
from profd.formats.outcome import DataCategory, Outcome, OutcomeRecord
from profd.query.flame_rollup import merged_tree
from profd.store.records import OutcomeBucket, ProfileFilter
from tests.backends.brute_force import BASE, brute_force, check_functions, profiles, selected
from tests.backends.conftest import Indexed
from tests.factories import by_path, flame_of, function_ran, indexed_profile

HOUR = 3600

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


def test_rollups_match_the_rows_they_sum(indexed: Indexed) -> None:
    index, reads, _ = indexed
    stored = profiles(300, seed=1)
    for metadata, nodes, functions in stored:
        assert index.insert_profile(metadata, functions, nodes) is True
    # A redelivered profile must not be counted twice.
    assert index.insert_profile(stored[0][0], stored[0][2], stored[0][1]) is False

    @settings(max_examples=150, deadline=None)
    @given(selections)
    def check(where: ProfileFilter) -> None:
        got = merged_tree(reads, 1, where)
        assert by_path(got.tree) == brute_force(stored, where) and got.tree.lost == 0
        assert got.profiles == sum(1 for m, _, _ in stored if selected(m, where))
        check_functions(reads, stored, where)

    check()

    # Deleting profiles takes them back out of their buckets.
    gone = [m for m, _, _ in stored[::3]]
    index.delete_profiles(gone)
    kept = stored[1::3] + stored[2::3]
    assert by_path(merged_tree(reads, 1, ProfileFilter()).tree) == brute_force(kept, ProfileFilter())
    assert by_path(merged_tree(reads, 1, ProfileFilter(start=BASE + 3600)).tree) == brute_force(
        kept, ProfileFilter(start=BASE + 3600)
    )
    check_functions(reads, kept, ProfileFilter())
    check_functions(reads, kept, ProfileFilter(release="2.0", start=BASE + 3600))
    index.delete_profiles([m for m, _, _ in kept])
    everything = ProfileFilter()
    assert (
        list(reads.rollup_flame_trees(1, everything))
        == []
        == list(reads.rollup_flame_trees(1, everything, "day"))
    )
    assert (
        list(reads.rollup_functions(1, everything))
        == []
        == list(reads.rollup_functions(1, everything, "day"))
    )
    assert reads.rollup_profile_count(1, everything) == 0 == reads.count_profiles(1, everything)
    assert reads.rollup_profile_count(1, everything, "day") == 0
    assert list(reads.flame_trees(1, everything)) == [] and list(reads.profile_functions(1, everything)) == []


DAY = 86400
FIRST_DAY = (int(BASE) // DAY + 1) * DAY  # the first midnight (UTC) after BASE
day_bounds = st.one_of(
    st.none(),
    st.integers(0, 3).map(lambda d: FIRST_DAY + d * DAY),
    st.integers(-2, 60).map(lambda h: FIRST_DAY + h * 3600),
    st.floats(BASE, BASE + 4 * DAY),
)


def test_daily_rollups_match_the_rows_they_sum(indexed: Indexed) -> None:
    """Over several days, selections of whole days read the daily buckets, the hours around
    them the hourly ones, and the rest the profiles: together, what merging every profile
    answers."""
    index, reads, _ = indexed
    stored = profiles(200, seed=5, hours=80)
    for metadata, nodes, functions in stored:
        index.insert_profile(metadata, functions, nodes)

    @settings(max_examples=60, deadline=None)
    @given(st.builds(ProfileFilter, release=st.sampled_from([None, "1.0"]), start=day_bounds, end=day_bounds))
    def check(where: ProfileFilter) -> None:
        got = merged_tree(reads, 1, where)
        assert by_path(got.tree) == brute_force(stored, where)
        assert got.profiles == sum(1 for m, _, _ in stored if selected(m, where))
        check_functions(reads, stored, where)

    check()
    index.delete_profiles([m for m, _, _ in stored[::2]])
    kept = stored[1::2]
    for where in (ProfileFilter(), ProfileFilter(start=FIRST_DAY, end=FIRST_DAY + 2 * DAY)):
        assert by_path(merged_tree(reads, 1, where).tree) == brute_force(kept, where)
        check_functions(reads, kept, where)
    assert reads.rollup_profile_count(1, ProfileFilter(), "day") == sum(1 for m, _, _ in kept if m.sampled)


def test_a_profile_reads_back_as_written(indexed: Indexed) -> None:
    index, reads, _ = indexed
    metadata = msgspec.structs.replace(
        indexed_profile(2, "a" * 32, BASE + 10, transaction="/t", release="1.0"),
        device_class="high",
        profiler_id="b" * 32,
        sdk_name="sentry.python",
    )
    functions = [function_ran(7, [5, 1]), function_ran(3, [9]), function_ran(4, [9])]
    flame = flame_of({("main",): 1, ("main", "work"): 3}, package="app")
    assert index.insert_profile(metadata, functions, flame) is True
    assert index.insert_profile(metadata, functions, flame) is False
    assert reads.profile(2, metadata.profile_id) == metadata == reads.find_profile(metadata.profile_id)
    assert reads.profile(3, metadata.profile_id) is None and reads.find_profile("c" * 32) is None
    assert reads.profiles() == [metadata] == reads.profiles(2) and reads.profiles(3) == []
    # Most self time first, then by fingerprint.
    assert reads.functions(2, metadata.profile_id) == [functions[1], functions[2], functions[0]]
    (stored,) = reads.flame_trees(1, ProfileFilter())
    assert by_path(stored) == by_path(flame) and stored.parent.tolist() == flame.parent.tolist()
    main, work = frame_id("main", "app"), frame_id("work", "app")
    assert reads.frame_names([main, work, 12345]) == {
        main: ("main", "app", True),
        work: ("work", "app", True),
    }
    (hour,) = reads.rollup_flame_trees(1, ProfileFilter())
    (day,) = reads.rollup_flame_trees(1, ProfileFilter(), "day")
    assert by_path(hour) == by_path(flame) == by_path(day)
    # Another organization's selection sees none of it.
    assert reads.count_profiles(2, ProfileFilter()) == 0 and list(reads.flame_trees(2, ProfileFilter())) == []
    assert list(reads.rollup_flame_trees(2, ProfileFilter(), "day")) == []


def test_unsampled_profiles_keep_their_functions_out_of_every_selection(indexed: Indexed) -> None:
    index, reads, _ = indexed
    unsampled = indexed_profile(2, "d" * 32, BASE + 10, transaction="/t", release="1.0", sampled=False)
    index.insert_profile(unsampled, [function_ran(1, [5])], flame_of({("main",): 4}))
    assert reads.profiles() == [] and reads.find_profile(unsampled.profile_id) == unsampled
    assert [f.fingerprint for f in reads.functions(2, unsampled.profile_id)] == [1]
    everything = ProfileFilter()
    assert reads.count_profiles(1, everything) == 0 == reads.rollup_profile_count(1, everything)
    assert list(reads.flame_trees(1, everything)) == [] == list(reads.rollup_flame_trees(1, everything))
    assert reads.rollup_profile_count(1, everything, "day") == 0
    assert list(reads.profile_functions(1, everything)) == [] == list(reads.rollup_functions(1, everything))
    assert reads.list_profiles(1, everything, sort="start", descending=True, after=None, limit=10) == []


def test_profiles_are_listed_sorted_filtered_and_paged(indexed: Indexed) -> None:
    index, reads, _ = indexed
    made = []
    for n in range(12):
        metadata = msgspec.structs.replace(
            indexed_profile(
                1 + n % 2,
                f"{n % 5:x}{n:031x}",
                BASE + n * 60,
                transaction="/a" if n % 3 else "/b",
                release="1.0",
            ),
            duration_ns=(n % 4) * 1000,
            device_class="low" if n < 6 else "high",
        )
        index.insert_profile(metadata)
        made.append(metadata)

    def listing(where: ProfileFilter, sort: str, descending: bool, limit: int) -> list[str]:
        pages, after = [], None
        while True:
            page = reads.list_profiles(1, where, sort=sort, descending=descending, after=after, limit=limit)  # type: ignore[arg-type]
            pages += [m.profile_id for m in page]
            if len(page) < limit:
                return pages
            last = page[-1]
            after = (last.start if sort == "start" else last.duration_ns, last.profile_id)

    for sort, value in (("start", lambda m: m.start), ("duration", lambda m: m.duration_ns)):
        for descending in (True, False):
            expected = sorted(made, key=lambda m: (value(m), m.profile_id), reverse=descending)
            for limit in (1, 5, 20):
                assert listing(ProfileFilter(), sort, descending, limit) == [m.profile_id for m in expected]
    where = ProfileFilter(
        project_ids=[2], transaction="/a", device_class="high", start=BASE + 60, end=BASE + 600
    )
    expected = [
        m.profile_id
        for m in made
        if m.project_id == 2
        and m.transaction_name == "/a"
        and m.device_class == "high"
        and BASE + 60 <= m.start < BASE + 600
    ]
    assert listing(where, "start", False, 2) == expected and expected
    assert reads.count_profiles(1, where) == len(expected)
    assert listing(ProfileFilter(platform="cocoa"), "start", True, 5) == []
    newest_first = [m.profile_id for m in sorted(made, key=lambda m: -m.start)]
    assert listing(ProfileFilter(environment="prod", release="1.0"), "start", True, 50) == newest_first


def test_a_sample_of_trees_is_the_first_profiles_by_id(indexed: Indexed) -> None:
    index, reads, _ = indexed
    ids = [f"{n:032x}" for n in (5, 1, 4, 2, 3)]
    for n, profile_id in enumerate(ids):
        index.insert_profile(
            indexed_profile(1, profile_id, BASE + n, transaction="/a", release="1.0"),
            flame=flame_of({("main",): n + 1}),
        )
    # Ids 1, 2 and 3 were inserted second, fourth and fifth.
    sampled = sorted(int(tree.samples[0]) for tree in reads.flame_trees(1, ProfileFilter(), 3))
    assert sampled == [2, 4, 5]
    assert len(list(reads.flame_trees(1, ProfileFilter(), 500))) == 5
    assert list(reads.flame_trees(1, ProfileFilter(project_ids=[9]), 500)) == []


def test_buckets_keep_their_budget_and_their_totals(indexed: Indexed) -> None:
    """Profiles whose stacks are all different overflow an hour's budget: the bucket trees
    stay within 5/4 of their budgets, the total stays exact, and every node is at most the
    merged tree's `lost` below the exact merge, never above it."""
    index, reads, _ = indexed
    trees = []
    for n in range(12):
        stacks = {("main", f"handler{n % 3}", f"f{n}_{k}", f"g{k % 7}"): 1 + k % 5 for k in range(300)}
        trees.append(flame_of(stacks))
        index.insert_profile(
            indexed_profile(1, f"{n:032x}", BASE + 60 * n, transaction="/a", release="1.0"), flame=trees[-1]
        )
    exact = by_path(merge(trees))
    (hour,) = reads.rollup_flame_trees(1, ProfileFilter())
    (day,) = reads.rollup_flame_trees(1, ProfileFilter(), "day")
    assert len(exact) > HOUR_NODES * 5 // 4 and len(hour) <= HOUR_NODES * 5 // 4 < len(day) <= DAY_NODES
    for stored in (hour, merged_tree(reads, 1, ProfileFilter(start=BASE, end=BASE + 3600)).tree):
        assert stored.lost > 0 and stored.total_samples == sum(t.total_samples for t in trees)
        for path, (frame, _, samples, _, _) in by_path(stored).items():
            if frame != OTHER_FRAME:
                assert exact[path][2] - stored.lost <= samples <= exact[path][2]
    assert by_path(day) == exact  # within the day's budget: exact


def test_expired_profiles_go_with_their_rows(indexed: Indexed) -> None:
    index, reads, _ = indexed
    day = 86400
    old = msgspec.structs.replace(
        indexed_profile(1, "1" * 32, BASE, transaction="/a", release="1"), retention_days=1
    )
    older = msgspec.structs.replace(old, profile_id="2" * 32, start=BASE - 10, sampled=False)
    new = indexed_profile(1, "3" * 32, BASE, transaction="/a", release="1")
    for metadata in (old, older, new):
        index.insert_profile(metadata, [function_ran(1, [5])], flame_of({("main",): 1}))
    assert index.expired(BASE + day / 2) == []
    assert index.expired(BASE + 2 * day) == [older, old]
    assert index.expired(BASE + 2 * day, limit=1) == [older]
    index.delete_profiles([older, old])
    assert index.expired(BASE + 2 * day) == []
    assert reads.find_profile(old.profile_id) is None and reads.functions(1, old.profile_id) == []
    assert reads.profiles() == [new]
    assert [t.occurrences.tolist() for t in reads.rollup_flame_trees(1, ProfileFilter())] == [[1]]
    assert [t.occurrences.tolist() for t in reads.rollup_flame_trees(1, ProfileFilter(), "day")] == [[1]]
    assert reads.count_profiles(1, ProfileFilter()) == 1


def outcome(
    org_id: int,
    project_id: int,
    at: float,
    *,
    key: str | None = None,
    outcome: Outcome = Outcome.ACCEPTED,
    reason: str | None = None,
    category: DataCategory = DataCategory.PROFILE,
    quantity: int = 1,
) -> OutcomeRecord:
    return OutcomeRecord(
        timestamp=datetime.fromtimestamp(at, UTC),
        org_id=org_id,
        project_id=project_id,
        key_id=None,
        outcome=outcome,
        reason=reason,
        event_id="e" * 32,
        category=category,
        quantity=quantity,
        key=key,
    )


def test_an_outcome_key_counts_once_and_outcomes_mark_their_projects(indexed: Indexed) -> None:
    index, reads, directory = indexed
    org = directory.create_organization("acme")
    web, api, quiet = (directory.create_project(org.id, slug) for slug in ("web", "api", "quiet"))
    index.record_outcomes(
        [outcome(org.id, web.id, BASE, key="m/0"), outcome(org.id, web.id, BASE, key="m/0")]
        + [outcome(org.id, api.id, BASE, outcome=Outcome.INVALID, reason="profiling_invalid_json")] * 2
    )
    # The same message again: its keyed outcome adds nothing, keyless ones always add.
    index.record_outcomes(
        [outcome(org.id, web.id, BASE, key="m/0"), outcome(org.id, web.id, BASE, key="m/1")]
    )
    index.record_outcomes([])
    assert index.recorded_outcome_keys(["m/0", "m/1", "m/2"]) == {"m/0", "m/1"}
    assert index.recorded_outcome_keys([]) == set()
    assert index.recorded_outcome_keys([f"k/{n}" for n in range(2500)] + ["m/1"]) == {"m/1"}
    assert [(c.outcome, c.reason, c.times) for c in reads.outcome_counts(web.id)] == [
        (Outcome.ACCEPTED, None, 2)
    ]
    assert [(c.outcome, c.reason, c.times) for c in reads.outcome_counts(api.id)] == [
        (Outcome.INVALID, "profiling_invalid_json", 2)
    ]
    assert sum(c.times for c in reads.outcome_counts()) == 4
    assert [directory.project(p.id).has_profiles for p in (web, api, quiet)] == [True, True, False]  # type: ignore[union-attr]
    assert index.mark_has_profiles(quiet.id) is True and index.mark_has_profiles(quiet.id) is False
    assert index.mark_has_profiles(web.id) is False
    assert directory.project(quiet.id).has_profiles  # type: ignore[union-attr]


def test_outcomes_are_counted_by_time_bucket(indexed: Indexed) -> None:
    index, reads, directory = indexed
    org, other = directory.create_organization("acme"), directory.create_organization("other")
    project = directory.create_project(org.id, "web")
    index.record_outcomes(
        [
            outcome(org.id, project.id, BASE + 10, quantity=2),
            outcome(org.id, project.id, BASE + 20, category=DataCategory.PROFILE_INDEXED),
            outcome(org.id, project.id, BASE + 30, outcome=Outcome.INVALID, reason="b"),
            outcome(org.id, project.id, BASE + 40, outcome=Outcome.INVALID, reason="a"),
            outcome(org.id, project.id, BASE + HOUR + 5),
            outcome(other.id, project.id, BASE + 5),
        ]
    )
    series = reads.outcome_series(org.id, start=None, end=None, interval=HOUR)
    hour = int(BASE)
    assert series == [
        OutcomeBucket(hour, Outcome.ACCEPTED, None, DataCategory.PROFILE, 1, 2),
        OutcomeBucket(hour, Outcome.ACCEPTED, None, DataCategory.PROFILE_INDEXED, 1, 1),
        OutcomeBucket(hour, Outcome.INVALID, "a", DataCategory.PROFILE, 1, 1),
        OutcomeBucket(hour, Outcome.INVALID, "b", DataCategory.PROFILE, 1, 1),
        OutcomeBucket(hour + HOUR, Outcome.ACCEPTED, None, DataCategory.PROFILE, 1, 1),
    ]
    assert all(isinstance(b.bucket, int) for b in series)
    assert reads.outcome_series(org.id, start=BASE + 25, end=BASE + HOUR, interval=60) == [
        OutcomeBucket(hour, Outcome.INVALID, "a", DataCategory.PROFILE, 1, 1),
        OutcomeBucket(hour, Outcome.INVALID, "b", DataCategory.PROFILE, 1, 1),
    ]
    assert reads.outcome_series(other.id, start=None, end=None, interval=86400) == [
        OutcomeBucket(int(BASE // 86400 * 86400), Outcome.ACCEPTED, None, DataCategory.PROFILE, 1, 1)
    ]


@pytest.mark.parametrize("default_days", [90, 30])
def test_outcomes_expire_with_their_organizations_retention(indexed: Indexed, default_days: int) -> None:
    index, reads, directory = indexed
    short = directory.create_organization("short", retention_days=7)
    plain = directory.create_organization("plain")
    day = 86400.0
    now = 1_000 * day
    index.record_outcomes(
        [
            outcome(short.id, 1, now - 8 * day),
            outcome(short.id, 1, now - 6 * day),
            outcome(plain.id, 2, now - (default_days + 1) * day),
            outcome(plain.id, 2, now - (default_days - 1) * day),
        ]
    )
    assert index.expire_outcomes(now, default_days) == 2
    assert index.expire_outcomes(now, default_days) == 0
    kept = reads.outcome_series(short.id, start=None, end=None, interval=86400)
    assert [round((now - b.bucket) / day) for b in kept] == [6]
    assert [c.times for c in reads.outcome_counts(2)] == [1]
