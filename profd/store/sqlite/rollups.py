"""Hourly rollups, kept in step with the per-profile rows inside the index's transactions.

A sampled profile belongs to one bucket: its project, the hour it started in, and the
dimensions the read side filters on (transaction, release, environment, platform, device
class).  Each bucket holds its profiles' folded call trees summed per path
(`flame_rollup`) and their function metrics per fingerprint (`function_rollup`: count,
sum, the slowest occurrence, a few examples, and a log histogram of self times for
percentiles).  Reads over whole hours use the buckets; reads over partial hours use the
per-profile rows (profd.query.rollup).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from profd.formats import histogram
from profd.formats.rows import FlameNode, ProfileMetadata
from profd.store.records import EXAMPLES, HOUR

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


def add_profile(
    db: sqlite3.Connection,
    metadata: ProfileMetadata,
    functions: Sequence[FunctionOccurrences],
    flame: Sequence[FlameNode],
) -> None:
    bucket = db.execute(
        "INSERT INTO rollup_buckets (organization_id, project_id, hour, transaction_name, release, environment,"
        " platform, device_class, profiles) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
        " ON CONFLICT (project_id, hour, transaction_name, release, environment, platform, device_class)"
        " DO UPDATE SET profiles = profiles + 1 RETURNING id",
        (metadata.organization_id, metadata.project_id, *bucket_key(metadata)),
    ).fetchone()[0]
    db.executemany(
        "INSERT INTO flame_rollup VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (bucket, path) DO UPDATE SET"
        " occurrences = occurrences + 1, sample_count = sample_count + excluded.sample_count,"
        " duration_ns = duration_ns + excluded.duration_ns, self_time_ns = self_time_ns + excluded.self_time_ns",
        [(bucket, n.path, n.sample_count, n.duration_ns, n.self_time_ns) for n in flame],
    )
    _add_functions(db, bucket, metadata.profile_id, functions)


def _add_functions(
    db: sqlite3.Connection, bucket: int, profile_id: str, functions: Sequence[FunctionOccurrences]
) -> None:
    # Histograms and example lists cannot be summed by an UPSERT: read, merge, write back.
    for f in functions:
        row = db.execute(
            "SELECT occurrences, sum_self_time_ns, worst_ns, worst_profile_id, examples, self_times"
            " FROM function_rollup WHERE bucket = ? AND fingerprint = ?",
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
            "INSERT OR REPLACE INTO function_rollup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


def remove_profile(db: sqlite3.Connection, metadata: ProfileMetadata) -> int | None:
    """Take a profile's call tree back out of its bucket, before its per-profile rows are
    deleted; the bucket, for `rebuild_functions` once the deletions are done."""
    found = db.execute(
        "SELECT id FROM rollup_buckets WHERE project_id = ? AND hour = ? AND transaction_name = ? AND release = ?"
        " AND environment = ? AND platform = ? AND device_class = ?",
        (metadata.project_id, *bucket_key(metadata)),
    ).fetchone()
    if found is None:
        return None
    bucket: int = found[0]
    db.execute(
        "UPDATE flame_rollup SET occurrences = occurrences - 1, sample_count = flame_rollup.sample_count -"
        " f.sample_count, duration_ns = flame_rollup.duration_ns - f.duration_ns, self_time_ns ="
        " flame_rollup.self_time_ns - f.self_time_ns FROM flame_nodes f WHERE f.project_id = ? AND"
        " f.profile_id = ? AND flame_rollup.bucket = ? AND flame_rollup.path = f.path",
        (metadata.project_id, metadata.profile_id, bucket),
    )
    db.execute("DELETE FROM flame_rollup WHERE bucket = ? AND occurrences <= 0", (bucket,))
    db.execute("UPDATE rollup_buckets SET profiles = profiles - 1 WHERE id = ?", (bucket,))
    return bucket


def rebuild_functions(db: sqlite3.Connection, buckets: set[int]) -> None:
    """The slowest occurrence and the examples cannot be subtracted: after deletions, the
    function rows of the buckets touched are rebuilt from the profiles left in them (a bucket
    is one hour of one transaction), and emptied buckets go."""
    for bucket in sorted(buckets):
        db.execute("DELETE FROM function_rollup WHERE bucket = ?", (bucket,))
        left = db.execute(
            "DELETE FROM rollup_buckets WHERE id = ? AND profiles <= 0 RETURNING id", (bucket,)
        ).fetchone()
        if left is not None:
            continue
        rows = db.execute(
            "SELECT p.profile_id, f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns,"
            " f.max_duration_ns FROM rollup_buckets b JOIN profiles p ON p.project_id = b.project_id"
            " AND p.start >= b.hour AND p.start < b.hour + 3600 AND p.sampled"
            " AND IFNULL(p.transaction_name, '') = b.transaction_name AND IFNULL(p.release, '') = b.release"
            " AND IFNULL(p.environment, '') = b.environment AND p.platform = b.platform"
            " AND IFNULL(p.device_class, '') = b.device_class"
            " JOIN functions f ON f.project_id = p.project_id AND f.profile_id = p.profile_id"
            " WHERE b.id = ? ORDER BY p.rowid",
            (bucket,),
        ).fetchall()
        for profile_id, fingerprint, function, package, in_app, times, worst in rows:
            occurred = FunctionOccurrences(fingerprint, function, package, bool(in_app), _times(times), worst)
            _add_functions(db, bucket, profile_id, [occurred])


def rebuild(db: sqlite3.Connection) -> None:
    """Function rollups of every bucket, for an index from before they existed (the flame
    rollups are built by the migration's SQL)."""
    rebuild_functions(db, {row[0] for row in db.execute("SELECT id FROM rollup_buckets")})
