"""The embedded backends: `Directory`, `ProfileIndex` and `ProfileReads` in one SQLite file.

database.py (the connection, WAL, transactions), migrations.py (the numbered schema),
directory.py, index.py (writes) with rollups.py (hourly and daily buckets kept in step) and flames.py
(flame trees), reads.py.
All of profd's SQL lives in this package.
"""

from __future__ import annotations

from pathlib import Path

from profd.store.sqlite.database import Database
from profd.store.sqlite.directory import SqliteDirectory
from profd.store.sqlite.index import SqliteIndex
from profd.store.sqlite.reads import SqliteReads


class SqliteBackend(SqliteDirectory, SqliteIndex, SqliteReads):
    """All three protocols over one database file, so that outcomes and the projects'
    ``has_profiles`` flag are written in one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(Database(path))

    def close(self) -> None:
        self._db.close()


__all__ = ["Database", "SqliteBackend", "SqliteDirectory", "SqliteIndex", "SqliteReads"]
