"""Listing profiles: filters, sorting and keyset (cursor) pagination over the index."""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec

from profd.analysis.metadata import ProfileMetadata
from profd.store.index import Index

SORTS = {"start": "start", "duration": "duration_ns"}


class ProfileFilter(msgspec.Struct, kw_only=True):
    project_ids: list[int] | None = None
    transaction: str | None = None
    release: str | None = None
    environment: str | None = None
    platform: str | None = None
    device_class: str | None = None
    start: float | None = None  # unix seconds, inclusive
    end: float | None = None  # unix seconds, exclusive

    def where(self, organization_id: int, table: str = "") -> tuple[str, list[Any]]:
        """SQL conditions on the profiles table (named `table` in a join) and their parameters."""
        return self.conditions(organization_id, table, "start", self.start, self.end, sampled=True)

    def conditions(
        self,
        organization_id: int,
        table: str,
        time_column: str,
        start: float | None,
        end: float | None,
        *,
        sampled: bool,
    ) -> tuple[str, list[Any]]:
        """This filter's organization, project and dimension conditions on any table that has
        those columns (profiles, rollup buckets), with [start, end) on `time_column`."""
        t = f"{table}." if table else ""
        clauses = [f"{t}organization_id = ?"] + ([f"{t}sampled"] if sampled else [])
        params: list[Any] = [organization_id]
        if self.project_ids:
            clauses.append(f"{t}project_id IN ({', '.join('?' for _ in self.project_ids)})")
            params.extend(self.project_ids)
        for column, value in self.dimensions():
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

    def dimensions(self) -> list[tuple[str, str | None]]:
        return [
            ("transaction_name", self.transaction),
            ("release", self.release),
            ("environment", self.environment),
            ("platform", self.platform),
            ("device_class", self.device_class),
        ]


class Page(msgspec.Struct):
    items: list[ProfileMetadata]
    next_cursor: str | None


class BadCursor(ValueError):
    pass


def list_profiles(
    index: Index,
    organization_id: int,
    where: ProfileFilter,
    *,
    sort: Literal["start", "duration"] = "start",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    column = SORTS[sort]
    sql_where, params = where.where(organization_id)
    if cursor:
        value, profile_id = decode_cursor(cursor)
        comparison = "<" if descending else ">"
        sql_where += f" AND ({column}, profile_id) {comparison} (?, ?)"
        params.extend([value, profile_id])
    direction = "DESC" if descending else "ASC"
    rows = index.select(
        f"SELECT * FROM profiles WHERE {sql_where} ORDER BY {column} {direction}, profile_id {direction} LIMIT ?",
        (*params, limit + 1),
    )
    items = [msgspec.convert(dict(row), ProfileMetadata, strict=False) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit and items:
        last = items[-1]
        next_cursor = encode_cursor(last.start if sort == "start" else last.duration_ns, last.profile_id)
    return Page(items, next_cursor)


def encode_cursor(value: float | int, profile_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([value, profile_id])).decode()


def decode_cursor(cursor: str) -> tuple[float | int, str]:
    try:
        value, profile_id = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, msgspec.DecodeError) as e:
        raise BadCursor(f"invalid cursor: {e}") from None
    if not isinstance(value, int | float) or not isinstance(profile_id, str):
        raise BadCursor("invalid cursor")
    return value, profile_id
