"""Listing profiles: filters, sorting and keyset (cursor) pagination over `ProfileReads`."""

from __future__ import annotations

import base64

import msgspec

from profd.formats.rows import ProfileMetadata
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter, Sort

__all__ = ["BadCursor", "Page", "ProfileFilter", "decode_cursor", "encode_cursor", "list_profiles"]


class Page(msgspec.Struct):
    items: list[ProfileMetadata]
    next_cursor: str | None


class BadCursor(ValueError):
    pass


def list_profiles(
    reads: ProfileReads,
    organization_id: int,
    where: ProfileFilter,
    *,
    sort: Sort = "start",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    after = decode_cursor(cursor) if cursor else None
    rows = reads.list_profiles(
        organization_id, where, sort=sort, descending=descending, after=after, limit=limit + 1
    )
    items = rows[:limit]
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
