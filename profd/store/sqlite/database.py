"""One SQLite file in WAL mode, so readers (the query side) never block the writer (the
pipeline), behind one connection and a lock; migrated when opened (profd.store.sqlite.migrations)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from profd.errors import BackendUnavailable
from profd.store.sqlite.migrations import migrate


class Database:
    """Safe to share between threads: one connection behind a lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.execute("PRAGMA busy_timeout=5000")
        with self.transaction() as db:
            migrate(db)

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _unavailable():
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                # SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK
                # would fail with "no transaction is active" and hide the error that matters.
                if self.connection.in_transaction:
                    self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        with self._lock, _unavailable():
            return self.connection.execute(sql, params).fetchall()

    def check(self) -> None:
        """Raises BackendUnavailable unless the file answers (for readiness)."""
        self.query("SELECT 1")


class OnDatabase:
    """What the directory, index and reads over one `Database` have in common."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def close(self) -> None:
        self._db.close()

    def check(self) -> None:
        self._db.check()


@contextmanager
def _unavailable() -> Iterator[None]:
    """Operational errors (a full disk, an I/O error, locked past the busy timeout) say the
    database is unavailable, not that what was asked of it is wrong."""
    try:
        yield
    except sqlite3.OperationalError as e:
        raise BackendUnavailable("index", str(e)) from e
