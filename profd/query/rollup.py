"""Which part of a selection the daily and hourly rollups answer, and which part the
per-profile rows must (all through `ProfileReads`).

A selection is split into the whole hours it covers, read from the rollup buckets, and
the partial hours at its ends, read profile by profile; for flame trees, the whole days
among those hours are read from the daily buckets.  A selection on an empty dimension
value ('') cannot use the buckets, which store absent values as ''.
"""

from __future__ import annotations

import math

import msgspec

from profd.store.records import DAY, HOUR, ProfileFilter

Hours = tuple[int | None, int | None]


def rollup_hours(where: ProfileFilter) -> Hours | None:
    """The whole hours [first, last) the selection covers, None when the rollups cannot answer
    it (an empty dimension value: rollups store absent values as '')."""
    if any(value == "" for _, value in where.dimensions()):
        return None
    first = None if where.start is None else math.ceil(where.start / HOUR) * HOUR
    last = None if where.end is None else math.floor(where.end / HOUR) * HOUR
    if first is not None and last is not None and first >= last:
        return None
    return first, last


def whole_hours(where: ProfileFilter, hours: Hours) -> ProfileFilter:
    """The selection narrowed to its whole hours: what the rollup reads take."""
    first, last = hours
    return msgspec.structs.replace(where, start=first, end=last)


def edges(where: ProfileFilter, hours: Hours | None) -> list[ProfileFilter]:
    """The parts of the selection outside the rollup hours, read profile by profile."""
    if hours is None:
        return [where]
    first, last = hours
    edges = []
    if first is not None and where.start is not None and where.start < first:
        edges.append(msgspec.structs.replace(where, end=first))
    if last is not None and where.end is not None and last < where.end:
        edges.append(msgspec.structs.replace(where, start=last))
    return edges


class Parts(msgspec.Struct, frozen=True):
    days: ProfileFilter | None  # whole days, from the daily buckets
    hours: list[ProfileFilter]  # whole hours outside them, from the hourly buckets
    edges: list[ProfileFilter]  # partial hours, profile by profile


def split(where: ProfileFilter) -> Parts:
    """The selection as whole days, the whole hours around them, and its partial hours."""
    hours = rollup_hours(where)
    if hours is None:
        return Parts(None, [], [where])
    first, last = hours
    first_day = None if first is None else math.ceil(first / DAY) * DAY
    last_day = None if last is None else math.floor(last / DAY) * DAY
    if first_day is not None and last_day is not None and first_day >= last_day:
        return Parts(None, [whole_hours(where, hours)], edges(where, hours))
    around = []
    if first is not None and first_day is not None and first < first_day:
        around.append(msgspec.structs.replace(where, start=first, end=first_day))
    if last is not None and last_day is not None and last_day < last:
        around.append(msgspec.structs.replace(where, start=last_day, end=last))
    return Parts(msgspec.structs.replace(where, start=first_day, end=last_day), around, edges(where, hours))
