"""Which part of a selection the hourly rollups answer, and which part the per-profile rows
must (both through `ProfileReads`).

A selection is split into the whole hours it covers, read from the rollup buckets, and
the partial hours at its ends, read profile by profile.  A selection on an empty dimension
value ('') cannot use the buckets, which store absent values as ''.
"""

from __future__ import annotations

import math

import msgspec

from profd.store.records import HOUR, ProfileFilter

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
