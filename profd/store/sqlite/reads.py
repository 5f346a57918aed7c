"""`ProfileReads` in SQLite: selections of profiles turned into SQL over the per-profile rows
and the hourly and daily rollup buckets (profd.store.sqlite.rollups)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import msgspec

from profd.formats import flame_tree, histogram
from profd.formats.flame_tree import FlameTree, Frame
from profd.formats.outcome import DataCategory, Outcome
from profd.formats.rows import FunctionMetrics, ProfileMetadata
from profd.store.records import (
    FunctionRollup,
    OutcomeBucket,
    OutcomeCount,
    ProfileFilter,
    ProfileFunction,
    Sort,
    Span,
)
from profd.store.sqlite.database import OnDatabase
from profd.store.sqlite.index import metadata

SORTS: dict[str, str] = {"start": "start", "duration": "duration_ns"}

_times = msgspec.json.Decoder(list[int]).decode
_examples = msgspec.json.Decoder(list[str]).decode
_encode_ids = msgspec.json.Encoder().encode
BUCKET_TABLES: dict[str, str] = {"hour": "rollup_buckets", "day": "day_buckets"}
FUNCTION_TABLES: dict[str, str] = {"hour": "function_rollup", "day": "day_function_rollup"}


def conditions(
    where: ProfileFilter,
    organization_id: int,
    table: str,
    time_column: str,
    start: float | None,
    end: float | None,
    *,
    sampled: bool,
) -> tuple[str, list[Any]]:
    """The selection's organization, project and dimension conditions on a table that has
    those columns (profiles `p`, rollup buckets `b`), with [start, end) on `time_column`."""
    t = f"{table}." if table else ""
    clauses = [f"{t}organization_id = ?"] + ([f"{t}sampled"] if sampled else [])
    params: list[Any] = [organization_id]
    if where.project_ids:
        clauses.append(f"{t}project_id IN ({', '.join('?' for _ in where.project_ids)})")
        params.extend(where.project_ids)
    for column, value in where.dimensions():
        if value is not None:
            clauses.append(f"{t}{column} = ?")
            params.append(value)
    if start is not None:
        clauses.append(f"{t}{time_column} >= ?")
        params.append(start)
    if end is not None:
        clauses.append(f"{t}{time_column} < ?")
        params.append(end)
    return " AND ".join(clauses), params


def profile_where(where: ProfileFilter, organization_id: int, table: str = "") -> tuple[str, list[Any]]:
    """Conditions on the profiles table (named `table` in a join)."""
    return conditions(where, organization_id, table, "start", where.start, where.end, sampled=True)


def bucket_where(periods: ProfileFilter, organization_id: int, column: str = "hour") -> tuple[str, list[Any]]:
    """Conditions on the rollup buckets (`b`) of the selection's whole hours (or days)."""
    return conditions(periods, organization_id, "b", column, periods.start, periods.end, sampled=False)


class SqliteReads(OnDatabase):
    # -- single profiles -----------------------------------------------------------------

    def profile(self, project_id: int, profile_id: str) -> ProfileMetadata | None:
        rows = self._db.query(
            "SELECT * FROM profiles WHERE project_id = ? AND profile_id = ?", (project_id, profile_id)
        )
        return metadata(rows[0]) if rows else None

    def find_profile(self, profile_id: str) -> ProfileMetadata | None:
        rows = self._db.query("SELECT * FROM profiles WHERE profile_id = ? LIMIT 1", (profile_id,))
        return metadata(rows[0]) if rows else None

    def profiles(self, project_id: int | None = None, limit: int = 100) -> list[ProfileMetadata]:
        if project_id is None:
            rows = self._db.query(
                "SELECT * FROM profiles WHERE sampled ORDER BY start DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._db.query(
                "SELECT * FROM profiles WHERE sampled AND project_id = ? ORDER BY start DESC LIMIT ?",
                (project_id, limit),
            )
        return [metadata(row) for row in rows]

    def functions(self, project_id: int, profile_id: str) -> list[FunctionMetrics]:
        rows = self._db.query(
            "SELECT * FROM functions WHERE project_id = ? AND profile_id = ? ORDER BY sum_self_time_ns DESC,"
            " fingerprint",
            (project_id, profile_id),
        )
        return [
            FunctionMetrics(
                fingerprint=row["fingerprint"],
                function=row["function"],
                package=row["package"],
                in_app=bool(row["in_app"]),
                thread_id=row["thread_id"],
                self_times_ns=_times(row["self_times_ns"]),
                total_times_ns=_times(row["total_times_ns"]),
                sum_self_time_ns=row["sum_self_time_ns"],
                sample_count=row["sample_count"],
                max_duration=row["max_duration_ns"],
            )
            for row in rows
        ]

    # -- selections, profile by profile -------------------------------------------------

    def list_profiles(
        self,
        organization_id: int,
        where: ProfileFilter,
        *,
        sort: Sort,
        descending: bool,
        after: tuple[float | int, str] | None,
        limit: int,
    ) -> list[ProfileMetadata]:
        column = SORTS[sort]
        sql_where, params = profile_where(where, organization_id)
        if after is not None:
            comparison = "<" if descending else ">"
            sql_where += f" AND ({column}, profile_id) {comparison} (?, ?)"
            params.extend(after)
        direction = "DESC" if descending else "ASC"
        rows = self._db.query(
            f"SELECT * FROM profiles WHERE {sql_where} ORDER BY {column} {direction}, profile_id {direction}"
            " LIMIT ?",
            (*params, limit),
        )
        return [metadata(row) for row in rows]

    def count_profiles(self, organization_id: int, where: ProfileFilter) -> int:
        sql_where, params = profile_where(where, organization_id, table="p")
        return int(self._db.query(f"SELECT COUNT(*) FROM profiles p WHERE {sql_where}", params)[0][0])

    def flame_trees(
        self, organization_id: int, where: ProfileFilter, sample: int | None = None
    ) -> Iterator[FlameTree]:
        sql_where, params = profile_where(where, organization_id, table="p")
        chosen = f"SELECT p.project_id, p.profile_id FROM profiles p WHERE {sql_where}"
        if sample is not None:
            chosen += " ORDER BY p.profile_id LIMIT ?"
            params.append(sample)
        rows = self._db.query(
            f"SELECT t.tree FROM ({chosen}) s JOIN flame_trees t ON t.project_id = s.project_id"
            " AND t.profile_id = s.profile_id",
            params,
        )
        return (flame_tree.decode(row[0]) for row in rows)

    def frame_names(self, ids: Collection[int]) -> dict[int, Frame]:
        rows = self._db.query(
            "SELECT id, name, package, in_app FROM flame_frames WHERE id IN (SELECT value FROM json_each(?))",
            (_encode_ids(sorted(ids)).decode(),),
        )
        return {id_: (name, package, bool(in_app)) for id_, name, package, in_app in rows}

    def profile_functions(self, organization_id: int, where: ProfileFilter) -> Iterator[ProfileFunction]:
        sql_where, params = profile_where(where, organization_id, table="p")
        rows = self._db.query(
            "SELECT f.project_id, f.profile_id, f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns,"
            " f.max_duration_ns"
            " FROM functions f JOIN profiles p ON p.project_id = f.project_id AND p.profile_id = f.profile_id"
            f" WHERE {sql_where}",
            params,
        )
        return (
            ProfileFunction(
                project, profile, fingerprint, function, package, bool(in_app), _times(times), worst
            )
            for project, profile, fingerprint, function, package, in_app, times, worst in rows
        )

    # -- selections of whole hours, from the rollups -------------------------------------

    def rollup_profile_count(self, organization_id: int, periods: ProfileFilter, span: Span = "hour") -> int:
        sql_where, params = bucket_where(periods, organization_id, span)
        return int(
            self._db.query(
                f"SELECT IFNULL(SUM(b.profiles), 0) FROM {BUCKET_TABLES[span]} b WHERE {sql_where}", params
            )[0][0]
        )

    def rollup_flame_trees(
        self, organization_id: int, periods: ProfileFilter, span: Span = "hour"
    ) -> Iterator[FlameTree]:
        sql_where, params = bucket_where(periods, organization_id, span)
        rows = self._db.query(
            f"SELECT b.flame FROM {BUCKET_TABLES[span]} b WHERE {sql_where} AND b.flame IS NOT NULL", params
        )
        return (flame_tree.decode(row[0]) for row in rows)

    def rollup_functions(
        self, organization_id: int, periods: ProfileFilter, span: Span = "hour"
    ) -> Iterator[FunctionRollup]:
        sql_where, params = bucket_where(periods, organization_id, span)
        functions = FUNCTION_TABLES[span]
        rows = self._db.query(
            "SELECT b.project_id, r.fingerprint, r.function, r.package, r.in_app, r.occurrences,"
            " r.sum_self_time_ns, r.worst_ns, r.worst_profile_id, r.examples, r.self_times"
            f" FROM {BUCKET_TABLES[span]} b JOIN {functions} r ON r.bucket = b.id WHERE {sql_where}",
            params,
        )
        return (
            FunctionRollup(
                project,
                fingerprint,
                function,
                package,
                bool(in_app),
                occurrences,
                total,
                worst,
                worst_profile,
                _examples(examples),
                histogram.decode(times),
            )
            for project, fingerprint, function, package, in_app, occurrences, total, worst, worst_profile, examples, times in rows
        )

    # -- outcomes --------------------------------------------------------------------------

    def outcome_counts(self, project_id: int | None = None) -> list[OutcomeCount]:
        where, params = ("WHERE project_id = ?", (project_id,)) if project_id is not None else ("", ())
        rows = self._db.query(
            "SELECT outcome, reason, category, COUNT(*) AS times, SUM(quantity) AS quantity FROM outcomes "
            f"{where} GROUP BY outcome, reason, category ORDER BY outcome, category, reason",
            params,
        )
        return [
            OutcomeCount(Outcome(outcome), reason, DataCategory(category), times, quantity)
            for outcome, reason, category, times, quantity in rows
        ]

    def outcome_series(
        self, organization_id: int, *, start: float | None, end: float | None, interval: int
    ) -> list[OutcomeBucket]:
        clauses: list[str] = ["org_id = ?"]
        params: list[Any] = [organization_id]
        if start is not None:
            clauses.append("timestamp >= ?")
            params.append(start)
        if end is not None:
            clauses.append("timestamp < ?")
            params.append(end)
        rows = self._db.query(
            "SELECT CAST(timestamp / ? AS INTEGER) * ? AS bucket, outcome, reason, category,"
            f" COUNT(*) AS times, SUM(quantity) AS quantity FROM outcomes WHERE {' AND '.join(clauses)}"
            " GROUP BY bucket, outcome, reason, category ORDER BY bucket, outcome, category, reason",
            (int(interval), int(interval), *params),
        )
        return [
            OutcomeBucket(bucket, Outcome(outcome), reason, DataCategory(category), times, quantity)
            for bucket, outcome, reason, category, times, quantity in rows
        ]
