"""The `ProfileIndex` in SQLite: profile rows with their functions and folded call trees,
the hourly rollups kept in step with them (profd.store.sqlite.rollups), outcomes, retention."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from profd.formats import flame_tree
from profd.formats.flame_tree import FlameTree
from profd.formats.outcome import OutcomeRecord
from profd.formats.rows import FunctionMetrics, ProfileMetadata
from profd.store.sqlite import flames, rollups
from profd.store.sqlite.database import OnDatabase
from profd.store.sqlite.rollups import FunctionOccurrences

# Per-occurrence times are kept as JSON arrays: read whole, never queried inside.
_encode_times = msgspec.json.Encoder().encode


class SqliteIndex(OnDatabase):
    # Frame ids this process has written to the dictionary (it is only ever added to).
    _known_frames: set[int] | None = None

    # -- profiles ------------------------------------------------------------------------

    def insert_profile(
        self,
        metadata: ProfileMetadata,
        functions: Sequence[FunctionMetrics] = (),
        flame: FlameTree | None = None,
    ) -> bool:
        tree = flame_tree.empty() if flame is None else flame
        if self._known_frames is None:
            self._known_frames = set()
        added: list[int] = []
        fields = msgspec.structs.asdict(metadata)
        columns = ", ".join(f'"{name}"' for name in fields)
        marks = ", ".join("?" for _ in fields)
        rows = [
            (
                metadata.project_id,
                metadata.profile_id,
                f.fingerprint,
                f.function,
                f.package,
                f.in_app,
                f.thread_id,
                _encode_times(f.self_times_ns).decode(),
                _encode_times(f.total_times_ns).decode(),
                f.sum_self_time_ns,
                f.sample_count,
                f.max_duration,
                metadata.start,
            )
            for f in functions
        ]
        with self._db.transaction() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO profiles ({columns}) VALUES ({marks})", tuple(fields.values())
            )
            if cursor.rowcount == 1:
                db.executemany(
                    "INSERT OR IGNORE INTO functions (project_id, profile_id, fingerprint, function, package, in_app,"
                    " thread_id, self_times_ns, total_times_ns, sum_self_time_ns, sample_count, max_duration_ns,"
                    " start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                added = flames.add_frames(db, tree.names, self._known_frames)
                flames.insert_tree(db, metadata.project_id, metadata.profile_id, tree)
                if metadata.sampled:
                    occurrences = [
                        FunctionOccurrences(
                            f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns, f.max_duration
                        )
                        for f in functions
                    ]
                    rollups.add_profile(db, metadata, occurrences, tree)
        self._known_frames.update(added)
        return cursor.rowcount == 1

    def expired(self, now: float, limit: int = 1000) -> list[ProfileMetadata]:
        rows = self._db.query(
            "SELECT * FROM profiles WHERE start + retention_days * 86400 < ? ORDER BY start LIMIT ?",
            (now, limit),
        )
        return [metadata(row) for row in rows]

    def delete_profiles(self, profiles: Sequence[ProfileMetadata]) -> None:
        keys = [(m.project_id, m.profile_id) for m in profiles]
        with self._db.transaction() as db:
            touched = [rollups.remove_profile(db, m) for m in profiles if m.sampled]
            for table in ("functions", "flame_trees", "profiles"):
                db.executemany(f"DELETE FROM {table} WHERE project_id = ? AND profile_id = ?", keys)
            rollups.rebuild_after_deletion(db, touched)

    # -- outcomes and projects -----------------------------------------------------------

    def recorded_outcome_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        # SQLite binds at most 32,766 variables a statement.
        for start in range(0, len(keys), 1000):
            batch = list(keys[start : start + 1000])
            rows = self._db.query(
                f"SELECT idempotency_key FROM outcomes WHERE idempotency_key IN ({','.join('?' * len(batch))})",
                batch,
            )
            found.update(str(row[0]) for row in rows)
        return found

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        # One transaction: an envelope's rejections cost one write.
        if not records:
            return
        with self._db.transaction() as db:
            # A key seen before is a redelivery: the row adds nothing (NULL keys never collide).
            db.executemany(
                "INSERT INTO outcomes (timestamp, org_id, project_id, key_id, outcome, reason, event_id,"
                " category, quantity, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                [
                    (
                        record.timestamp.timestamp(),
                        record.org_id,
                        record.project_id,
                        record.key_id,
                        int(record.outcome),
                        record.reason,
                        record.event_id,
                        int(record.category),
                        record.quantity,
                        record.key,
                    )
                    for record in records
                ],
            )
            # The first outcome of a project is what Sentry's onboarding waits for.
            db.executemany(
                "UPDATE projects SET has_profiles = 1 WHERE id = ? AND has_profiles = 0",
                [(project_id,) for project_id in sorted({record.project_id for record in records})],
            )

    def expire_outcomes(self, now: float, default_retention_days: int) -> int:
        # Outcomes describe the profiles, so they go with them: the outcomes table stops growing.
        with self._db.transaction() as db:
            cursor = db.execute(
                "DELETE FROM outcomes WHERE timestamp < ? - 86400 * COALESCE("
                "(SELECT retention_days FROM organizations o WHERE o.id = outcomes.org_id), ?)",
                (now, default_retention_days),
            )
        return cursor.rowcount

    def mark_has_profiles(self, project_id: int) -> bool:
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE projects SET has_profiles = 1 WHERE id = ? AND has_profiles = 0", (project_id,)
            )
        return cursor.rowcount == 1


def metadata(row: sqlite3.Row) -> ProfileMetadata:
    """A profiles row as the analysis stage's struct."""
    return msgspec.convert(dict(row), ProfileMetadata, strict=False)
