"""Flame trees in SQLite: each profile's bounded tree (`flame_trees`), the merged trees of
the hourly and daily buckets (a `flame` blob on `rollup_buckets` and `day_buckets`), and
the frame dictionary they refer to (`flame_frames`).

A bucket's tree is the merge of its profiles' trees.  It may grow to 5/4 of its budget
before it is cut back to the budget, so a profile's insert usually only merges; the cut
adds to the tree's `lost` (profd.formats.flame_tree).  Deleting profiles rebuilds the trees
of the buckets they were in from the profiles left, since a cut tree cannot be subtracted
from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np

from profd.formats import flame_tree
from profd.formats.flame_tree import (
    DAY_NODES,
    HOUR_NODES,
    PROFILE_NODES,
    FlameTree,
    Frame,
    frame_id,
    stack_step,
)

Table = Literal["rollup_buckets", "day_buckets"]
BUDGETS: dict[str, int] = {"rollup_buckets": HOUR_NODES, "day_buckets": DAY_NODES}


def add_frames(db: sqlite3.Connection, names: dict[int, Frame], known: set[int]) -> list[int]:
    """Frames not in `known` (what this process wrote before) into the dictionary; the ids
    added, for the caller to remember once the transaction commits."""
    new = [(id_, *frame) for id_, frame in names.items() if id_ not in known]
    db.executemany("INSERT OR IGNORE INTO flame_frames VALUES (?, ?, ?, ?)", new)
    return [row[0] for row in new]


def insert_tree(db: sqlite3.Connection, project_id: int, profile_id: str, tree: FlameTree) -> None:
    db.execute(
        "INSERT OR IGNORE INTO flame_trees VALUES (?, ?, ?)",
        (project_id, profile_id, flame_tree.encode(tree)),
    )


def add_to_bucket(
    db: sqlite3.Connection, table: Table, bucket: int, old: bytes | None, tree: FlameTree
) -> None:
    merged = tree if old is None else flame_tree.merge([flame_tree.decode(old), tree])
    db.execute(
        f"UPDATE {table} SET flame = ? WHERE id = ?",
        (flame_tree.encode(flame_tree.fit(merged, BUDGETS[table])), bucket),
    )


# A day bucket's hours: the hourly buckets of the same project and dimensions in its day.
DAY_HOURS = (
    "SELECT h.{column} FROM day_buckets b JOIN rollup_buckets h ON h.project_id = b.project_id"
    " AND h.hour >= b.day AND h.hour < b.day + 86400 AND h.transaction_name = b.transaction_name"
    " AND h.release = b.release AND h.environment = b.environment AND h.platform = b.platform"
    " AND h.device_class = b.device_class WHERE b.id = ?"
)


def _bucket_trees(db: sqlite3.Connection, table: Table, bucket: int) -> Iterator[FlameTree]:
    """An hour's profiles' trees, or a day's hourly trees (at most 24, so that retention
    deleting a day's profiles one batch at a time does not read the day again each time)."""
    if table == "day_buckets":
        rows = db.execute(DAY_HOURS.format(column="flame") + " AND h.flame IS NOT NULL", (bucket,))
        return (flame_tree.decode(row[0]) for row in rows)
    rows = db.execute(
        "SELECT t.tree FROM rollup_buckets b JOIN profiles p ON p.project_id = b.project_id"
        " AND p.start >= b.hour AND p.start < b.hour + 3600 AND p.sampled"
        " AND IFNULL(p.transaction_name, '') = b.transaction_name AND IFNULL(p.release, '') = b.release"
        " AND IFNULL(p.environment, '') = b.environment AND p.platform = b.platform"
        " AND IFNULL(p.device_class, '') = b.device_class"
        " JOIN flame_trees t ON t.project_id = p.project_id AND t.profile_id = p.profile_id"
        " WHERE b.id = ? ORDER BY p.rowid",
        (bucket,),
    )
    return (flame_tree.decode(row[0]) for row in rows)


def rebuild(db: sqlite3.Connection, table: Table, buckets: Iterable[int]) -> None:
    """The trees of `buckets` from the profiles in them now (a day's from its hours, so
    rebuild the hours first); emptied day buckets go (hour buckets go with their function
    rows, profd.store.sqlite.rollups)."""
    for bucket in sorted(set(buckets)):
        if table == "day_buckets":
            gone = db.execute(
                "DELETE FROM day_buckets WHERE id = ? AND profiles <= 0 RETURNING id", (bucket,)
            ).fetchone()
            if gone is not None:
                continue
        tree = flame_tree.merge_all(_bucket_trees(db, table, bucket), BUDGETS[table])
        db.execute(f"UPDATE {table} SET flame = ? WHERE id = ?", (flame_tree.encode(tree), bucket))


def convert(db: sqlite3.Connection) -> None:
    """An index from before flame trees: each profile's per-path rows (`flame_nodes` over
    `flame_paths`) become its tree, cut to PROFILE_NODES; the buckets' trees are built from
    them, daily buckets created; the per-path tables go."""
    known: set[int] = set()
    profiles = db.execute("SELECT DISTINCT project_id, profile_id FROM flame_nodes").fetchall()
    for project_id, profile_id in profiles:
        rows = db.execute(
            "SELECT n.path, fp.parent, fp.name, fp.package, fp.in_app, fp.depth, n.sample_count, n.duration_ns,"
            " n.self_time_ns FROM flame_nodes n JOIN flame_paths fp ON fp.path = n.path"
            " WHERE n.project_id = ? AND n.profile_id = ? ORDER BY fp.depth",
            (project_id, profile_id),
        ).fetchall()
        # Old paths told addresses apart; a stack of (name, package) is the new identity.
        stacks: dict[int, int] = {}
        names: dict[int, Frame] = {}
        columns: list[list[int]] = [[] for _ in range(7)]
        for path, parent, name, package, in_app, depth, samples, duration, self_time in rows:
            frame = frame_id(name, package)
            names.setdefault(frame, (name, package, bool(in_app)))
            above = stacks.get(parent, 0)
            stacks[path] = int(stack_step(np.array([above], np.int64), np.array([frame], np.int64))[0])
            for column, value in zip(
                columns, (stacks[path], above, depth, frame, samples, duration, self_time), strict=True
            ):
                column.append(value)
        arrays = [np.array(c, np.int64) for c in columns]
        tree = flame_tree.of_instances(
            arrays[0], arrays[1], arrays[2].astype(np.int32), arrays[3], arrays[4], arrays[5], arrays[6]
        )
        tree = flame_tree.truncate(tree, PROFILE_NODES)
        known.update(add_frames(db, names, known))
        insert_tree(db, project_id, profile_id, tree)
    db.execute(
        "INSERT INTO day_buckets (organization_id, project_id, day, transaction_name, release, environment,"
        " platform, device_class, profiles) SELECT organization_id, project_id, CAST(hour / 86400 AS INTEGER)"
        " * 86400, transaction_name, release, environment, platform, device_class, SUM(profiles)"
        " FROM rollup_buckets GROUP BY 2, 3, 4, 5, 6, 7, 8"
    )
    tables: tuple[Table, ...] = ("rollup_buckets", "day_buckets")
    for table in tables:
        rebuild(db, table, [row[0] for row in db.execute(f"SELECT id FROM {table}")])
    db.execute("DROP TABLE flame_rollup")
    db.execute("DROP TABLE flame_nodes")
    db.execute("DROP TABLE flame_paths")
