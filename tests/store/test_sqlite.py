"""What only the SQLite backend has: its file (WAL, hashes only), and its numbered migrations,
which bring any data directory an earlier profd left up to date with its data intact.  What
every backend must do is tests/backends."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from profd.formats.outcome import DataCategory, Outcome, OutcomeRecord
from profd.query.flame_rollup import merged_tree
from profd.store.records import ProfileFilter
from profd.store.sqlite import SqliteBackend
from profd.store.sqlite.migrations import MIGRATIONS
from profd.store.tenancy import SCOPES
from tests.backends.brute_force import BASE, brute_force, check_functions, profiles
from tests.factories import by_path


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def test_the_index_is_one_wal_file_that_reopens_with_its_data(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "i.sqlite3")
    org = backend.create_organization("acme")
    project = backend.create_project(org.id, "web")
    token, secret = backend.issue_token(org.id, "ci", SCOPES)
    backend.close()
    backend = SqliteBackend(tmp_path / "i.sqlite3")
    assert backend.project(project.id) == project and backend.organization_by_slug("acme") == org
    assert backend.token_for_secret(secret) == token
    backend.close()
    assert rows(tmp_path / "i.sqlite3", "PRAGMA journal_mode") == [("wal",)]
    assert rows(tmp_path / "i.sqlite3", "PRAGMA user_version") == [(len(MIGRATIONS),)]
    # Only the token's hash is kept.
    assert rows(tmp_path / "i.sqlite3", "SELECT COUNT(*) FROM tokens WHERE token_hash = ?", (secret,)) == [
        (0,)
    ]


def index_as_of(path: Path, version: int) -> sqlite3.Connection:
    """An index file as a profd that knew only the first `version` migrations left it."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    db.execute("INSERT INTO organizations (slug, name, created) VALUES ('acme', 'acme', 0)")
    return db


def before(text: str) -> int:
    return next(n for n, script in enumerate(MIGRATIONS) if text in script)


def test_tokens_made_before_names_existed_read_with_an_empty_name(tmp_path: Path) -> None:
    db = index_as_of(tmp_path / "i.sqlite3", before("tokens ADD COLUMN name"))
    db.execute("INSERT INTO tokens (organization_id, token_hash, created) VALUES (1, 'h', 0)")
    db.close()
    reopened = SqliteBackend(tmp_path / "i.sqlite3")
    assert [t.name for t in reopened.tokens(1)] == [""]


def test_tokens_made_before_scopes_existed_keep_every_scope(tmp_path: Path) -> None:
    # They could do everything before; an upgrade must not lock their holders out.
    db = index_as_of(tmp_path / "i.sqlite3", before("tokens ADD COLUMN scopes"))
    secret = "profd_old"
    db.execute(
        "INSERT INTO tokens (organization_id, token_hash, created, name) VALUES (1, ?, ?, 'ci')",
        (hashlib.sha256(secret.encode()).hexdigest(), time.time()),
    )
    db.close()
    reopened = SqliteBackend(tmp_path / "i.sqlite3")
    (token,) = reopened.tokens(1)
    assert (token.name, token.scopes, token.parent_id) == ("ci", SCOPES, None)
    found = reopened.organization_for_token(secret)
    assert found is not None and found.slug == "acme"
    assert reopened.token_for_secret(secret) == token


def test_outcomes_recorded_before_keys_existed_stay_and_count(tmp_path: Path) -> None:
    db = index_as_of(tmp_path / "i.sqlite3", before("outcomes ADD COLUMN idempotency_key"))
    for _ in range(2):
        db.execute(
            "INSERT INTO outcomes (timestamp, org_id, project_id, outcome, category, quantity)"
            " VALUES (?, 1, 1, 0, 6, 1)",
            (BASE,),
        )
    db.close()
    reopened = SqliteBackend(tmp_path / "i.sqlite3")
    record = OutcomeRecord(
        datetime.fromtimestamp(BASE, UTC),
        1,
        1,
        None,
        Outcome.ACCEPTED,
        None,
        None,
        DataCategory.PROFILE,
        1,
        "k",
    )
    reopened.record_outcomes([record, record])
    assert [(c.outcome, c.times) for c in reopened.outcome_counts()] == [(Outcome.ACCEPTED, 3)]


def test_an_index_from_before_the_rollups_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[: before("flame_rollup")], start=1):
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
        # The per-path rows an earlier profd kept (its paths also told addresses apart).
        parents = nodes.parent_paths()
        db.executemany(
            "INSERT INTO flame_nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    metadata.project_id,
                    metadata.profile_id,
                    int(nodes.path[k]) ^ 0x10,
                    int(parents[k]) ^ 0x10 if parents[k] else 0,
                    *nodes.names[int(nodes.frame[k])],
                    int(nodes.depth[k]),
                    int(nodes.samples[k]),
                    int(nodes.duration_ns[k]),
                    int(nodes.self_time_ns[k]),
                )
                for k in range(len(nodes))
            ],
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
    index = SqliteBackend(path)
    where = ProfileFilter(release="1.0", start=BASE + 1800)
    assert by_path(merged_tree(index, 1, where).tree) == brute_force(stored, where)
    assert by_path(merged_tree(index, 1, ProfileFilter()).tree) == brute_force(stored, ProfileFilter())
    assert index.frame_names([int(stored[0][1].frame[0])]) == {
        int(stored[0][1].frame[0]): stored[0][1].names[int(stored[0][1].frame[0])]
    }
    check_functions(index, stored, ProfileFilter())
    check_functions(index, stored, where)


def test_deleting_every_profile_empties_the_rollup_tables(tmp_path: Path) -> None:
    index = SqliteBackend(tmp_path / "i.sqlite3")
    stored = profiles(30, seed=3)
    for metadata, nodes, functions in stored:
        index.insert_profile(metadata, functions, nodes)
    index.delete_profiles([m for m, _, _ in stored])
    index.close()
    for table in (
        "function_rollup",
        "day_function_rollup",
        "rollup_buckets",
        "day_buckets",
        "flame_trees",
        "functions",
        "profiles",
    ):
        assert rows(tmp_path / "i.sqlite3", f"SELECT COUNT(*) FROM {table}") == [(0,)], table
