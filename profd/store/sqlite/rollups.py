"""Hourly and daily rollups, kept in step with the per-profile rows inside the index's transactions.

A sampled profile belongs to one hourly bucket: its project, the hour it started in, and
the dimensions the read side filters on (transaction, release, environment, platform,
device class); and to the daily bucket of the same dimensions.  Each bucket holds its
profiles' flame trees merged within a node budget (profd.store.sqlite.flames) and their
function metrics per fingerprint (`function_rollup`, `day_function_rollup`: count, sum,
the slowest occurrence, a few examples, and a log histogram of self times for
percentiles).  Reads over whole days and hours use the buckets; reads over partial hours
use the per-profile rows (profd.query.rollup).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from profd.formats import histogram
from profd.formats.flame_tree import FlameTree
from profd.formats.rows import ProfileMetadata
from profd.store.records import DAY, EXAMPLES, HOUR
from profd.store.sqlite import flames

_examples = msgspec.json.Decoder(list[str]).decode
_times = msgspec.json.Decoder(list[int]).decode
_encode = msgspec.json.Encoder().encode


class FunctionOccurrences(msgspec.Struct, frozen=True):
    """One profile's occurrences of one function, what a function rollup row sums."""

    fingerprint: int
    function: str
    package: str
    in_app: bool
    self_times_ns: list[int]
    max_duration_ns: int


def bucket_key(metadata: ProfileMetadata) -> tuple[int, str, str, str, str, str]:
    """A profile's hour and dimensions (absent values are '': a UNIQUE key cannot hold NULLs)."""
    return (
        int(metadata.start // HOUR) * HOUR,
        metadata.transaction_name or "",
        metadata.release or "",
        metadata.environment or "",
        metadata.platform,
        metadata.device_class or "",
    )


def day_key(metadata: ProfileMetadata) -> tuple[int, str, str, str, str, str]:
    return (int(metadata.start // DAY) * DAY, *bucket_key(metadata)[1:])


_DIMENSIONS = "transaction_name, release, environment, platform, device_class"


def add_profile(
    db: sqlite3.Connection,
    metadata: ProfileMetadata,
    functions: Sequence[FunctionOccurrences],
    flame: FlameTree,
) -> None:
    bucket, old = db.execute(
        f"INSERT INTO rollup_buckets (organization_id, project_id, hour, {_DIMENSIONS}, profiles)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
        f" ON CONFLICT (project_id, hour, {_DIMENSIONS})"
        " DO UPDATE SET profiles = profiles + 1 RETURNING id, flame",
        (metadata.organization_id, metadata.project_id, *bucket_key(metadata)),
    ).fetchone()
    flames.add_to_bucket(db, "rollup_buckets", bucket, old, flame)
    day, old_day = db.execute(
        f"INSERT INTO day_buckets (organization_id, project_id, day, {_DIMENSIONS}, profiles)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
        f" ON CONFLICT (project_id, day, {_DIMENSIONS})"
        " DO UPDATE SET profiles = profiles + 1 RETURNING id, flame",
        (metadata.organization_id, metadata.project_id, *day_key(metadata)),
    ).fetchone()
    flames.add_to_bucket(db, "day_buckets", day, old_day, flame)
    _add_functions(db, "function_rollup", bucket, metadata.profile_id, functions)
    _add_functions(db, "day_function_rollup", day, metadata.profile_id, functions)


FunctionTable = Literal["function_rollup", "day_function_rollup"]
# Each function table's buckets: (bucket table, its time column, its span in seconds).
BUCKETS: dict[str, tuple[str, str, int]] = {
    "function_rollup": ("rollup_buckets", "hour", HOUR),
    "day_function_rollup": ("day_buckets", "day", DAY),
}


def _add_functions(
    db: sqlite3.Connection,
    table: FunctionTable,
    bucket: int,
    profile_id: str,
    functions: Sequence[FunctionOccurrences],
) -> None:
    # Histograms and example lists cannot be summed by an UPSERT: read, merge, write back.
    for f in functions:
        row = db.execute(
            "SELECT occurrences, sum_self_time_ns, worst_ns, worst_profile_id, examples, self_times"
            f" FROM {table} WHERE bucket = ? AND fingerprint = ?",
            (bucket, f.fingerprint),
        ).fetchone()
        if row is None:
            occurrences, total, worst, worst_profile, examples, times = 0, 0, -1, "", [], {}
        else:
            occurrences, total, worst, worst_profile = row[0], row[1], row[2], row[3]
            examples, times = _examples(row[4]), histogram.decode(row[5])
        histogram.add(times, f.self_times_ns)
        if len(examples) < EXAMPLES and profile_id not in examples:
            examples.append(profile_id)
        if f.max_duration_ns > worst:
            worst, worst_profile = f.max_duration_ns, profile_id
        db.execute(
            f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                bucket,
                f.fingerprint,
                f.function,
                f.package,
                f.in_app,
                occurrences + len(f.self_times_ns),
                total + sum(f.self_times_ns),
                worst,
                worst_profile,
                _encode(examples).decode(),
                histogram.encode(times),
            ),
        )


def remove_profile(db: sqlite3.Connection, metadata: ProfileMetadata) -> tuple[int | None, int | None]:
    """Count a profile out of its hourly and daily buckets; the buckets, whose trees and
    function rows are rebuilt (`rebuild_after_deletion`) once the profiles' rows are gone."""
    hour = db.execute(
        f"UPDATE rollup_buckets SET profiles = profiles - 1 WHERE project_id = ? AND hour = ? AND"
        f" ({_DIMENSIONS}) = (?, ?, ?, ?, ?) RETURNING id",
        (metadata.project_id, *bucket_key(metadata)),
    ).fetchone()
    day = db.execute(
        f"UPDATE day_buckets SET profiles = profiles - 1 WHERE project_id = ? AND day = ? AND"
        f" ({_DIMENSIONS}) = (?, ?, ?, ?, ?) RETURNING id",
        (metadata.project_id, *day_key(metadata)),
    ).fetchone()
    return (None if hour is None else hour[0]), (None if day is None else day[0])


def rebuild_after_deletion(db: sqlite3.Connection, touched: Sequence[tuple[int | None, int | None]]) -> None:
    hours = {hour for hour, _ in touched if hour is not None}
    days = {day for _, day in touched if day is not None}
    rebuild_functions(db, hours)
    rebuild_functions(db, days, "day_function_rollup")
    flames.rebuild(db, "rollup_buckets", hours)
    flames.rebuild(db, "day_buckets", days)


def rebuild_functions(
    db: sqlite3.Connection, buckets: set[int], table: FunctionTable = "function_rollup"
) -> None:
    """The slowest occurrence and the examples cannot be subtracted: after deletions, the
    function rows of the buckets touched are rebuilt from the profiles left in them (a bucket
    is one hour, or day, of one transaction), and emptied hourly buckets go (daily ones go
    with their flame trees, profd.store.sqlite.flames)."""
    buckets_table, column, span = BUCKETS[table]
    for bucket in sorted(buckets):
        db.execute(f"DELETE FROM {table} WHERE bucket = ?", (bucket,))
        if table == "day_function_rollup":
            _day_from_hours(db, bucket)
            continue
        left = db.execute(
            "DELETE FROM rollup_buckets WHERE id = ? AND profiles <= 0 RETURNING id", (bucket,)
        ).fetchone()
        if left is not None:
            continue
        rows = db.execute(
            "SELECT p.profile_id, f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns,"
            f" f.max_duration_ns FROM {buckets_table} b JOIN profiles p ON p.project_id = b.project_id"
            f" AND p.start >= b.{column} AND p.start < b.{column} + {span} AND p.sampled"
            " AND IFNULL(p.transaction_name, '') = b.transaction_name AND IFNULL(p.release, '') = b.release"
            " AND IFNULL(p.environment, '') = b.environment AND p.platform = b.platform"
            " AND IFNULL(p.device_class, '') = b.device_class"
            " JOIN functions f ON f.project_id = p.project_id AND f.profile_id = p.profile_id"
            " WHERE b.id = ? ORDER BY p.rowid",
            (bucket,),
        ).fetchall()
        for profile_id, fingerprint, function, package, in_app, times, worst in rows:
            occurred = FunctionOccurrences(fingerprint, function, package, bool(in_app), _times(times), worst)
            _add_functions(db, table, bucket, profile_id, [occurred])


def _day_from_hours(db: sqlite3.Connection, day: int) -> None:
    """A day's function rows summed from its hours' (rebuilt first): counts, sums and
    histograms add, the slowest is the slowest of the hours', examples the first five."""
    rows = db.execute(
        "SELECT fingerprint, function, package, in_app, occurrences, sum_self_time_ns, worst_ns,"
        " worst_profile_id, examples, self_times FROM function_rollup WHERE bucket IN ("
        + flames.DAY_HOURS.format(column="id")
        + ") ORDER BY bucket",
        (day,),
    ).fetchall()
    summed: dict[int, list[Any]] = {}
    for fingerprint, function, package, in_app, count, total, worst, worst_profile, examples, times in rows:
        found = summed.get(fingerprint)
        if found is None:
            summed[fingerprint] = [
                function,
                package,
                in_app,
                count,
                total,
                worst,
                worst_profile,
                _examples(examples),
                histogram.decode(times),
            ]
            continue
        found[3] += count
        found[4] += total
        if worst > found[5]:
            found[5], found[6] = worst, worst_profile
        found[7].extend(e for e in _examples(examples) if e not in found[7])
        histogram.merge(found[8], histogram.decode(times))
    db.executemany(
        "INSERT INTO day_function_rollup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                day,
                fingerprint,
                f[0],
                f[1],
                f[2],
                f[3],
                f[4],
                f[5],
                f[6],
                _encode(f[7][:EXAMPLES]).decode(),
                histogram.encode(f[8]),
            )
            for fingerprint, f in summed.items()
        ],
    )


def rebuild(db: sqlite3.Connection) -> None:
    """Function rollups of every bucket, for an index from before they existed (the flame
    rollups are built by the migration's SQL)."""
    rebuild_functions(db, {row[0] for row in db.execute("SELECT id FROM rollup_buckets")})
