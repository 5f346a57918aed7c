"""The `Directory` in SQLite: organizations, projects, DSN keys and tokens."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from profd.store.records import Organization, Project, ProjectKey, Token
from profd.store.sqlite.database import OnDatabase
from profd.store.tenancy import (
    ID_LIMIT,
    SCOPES,
    RevokedToken,
    SlugTaken,
    check_slug,
    new_public_key,
    new_token_secret,
    parse_scopes,
    token_hash,
)


class SqliteDirectory(OnDatabase):
    # -- organizations --------------------------------------------------------------------

    def create_organization(
        self, slug: str, name: str | None = None, retention_days: int | None = None
    ) -> Organization:
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO organizations (slug, name, retention_days, created) VALUES (?, ?, ?, ?)",
                (slug, name or slug, retention_days, time.time()),
            )
        return Organization(int(cursor.lastrowid or 0), slug, name or slug, retention_days)

    def organization(self, organization_id: int) -> Organization | None:
        rows = self._db.query("SELECT * FROM organizations WHERE id = ?", (organization_id,))
        return _organization(rows[0]) if rows else None

    def organization_by_slug(self, slug: str) -> Organization | None:
        rows = self._db.query("SELECT * FROM organizations WHERE slug = ?", (slug,))
        return _organization(rows[0]) if rows else None

    # -- projects and keys ----------------------------------------------------------------

    def create_project(self, organization_id: int, slug: str, name: str | None = None) -> Project:
        check_slug(slug)
        try:
            with self._db.transaction() as db:
                cursor = db.execute(
                    "INSERT INTO projects (organization_id, slug, name, created) VALUES (?, ?, ?, ?)",
                    (organization_id, slug, name or slug, time.time()),
                )
                project_id = int(cursor.lastrowid or 0)
                _insert_key(db, project_id)
        except sqlite3.IntegrityError:
            if self.project_by_slug(organization_id, slug) is None:
                raise
            raise SlugTaken(f"a project {slug!r} exists already") from None
        return Project(
            id=project_id, organization_id=organization_id, slug=slug, name=name or slug, has_profiles=False
        )

    def project(self, project_id: int) -> Project | None:
        if not 0 < project_id < ID_LIMIT:  # ids come from URLs: no such project, not an error
            return None
        rows = self._db.query("SELECT * FROM projects WHERE id = ?", (project_id,))
        return _project(rows[0]) if rows else None

    def projects(self, organization_id: int | None = None) -> list[Project]:
        if organization_id is None:
            rows = self._db.query("SELECT * FROM projects ORDER BY id")
        else:
            rows = self._db.query(
                "SELECT * FROM projects WHERE organization_id = ? ORDER BY id", (organization_id,)
            )
        return [_project(row) for row in rows]

    def project_by_slug(self, organization_id: int, slug: str) -> Project | None:
        rows = self._db.query(
            "SELECT * FROM projects WHERE organization_id = ? AND slug = ?", (organization_id, slug)
        )
        return _project(rows[0]) if rows else None

    def create_key(self, project_id: int) -> ProjectKey:
        with self._db.transaction() as db:
            return _insert_key(db, project_id)

    def keys(self, project_id: int) -> list[ProjectKey]:
        # Whoever shows "the" DSN of a project takes the first: an active key while there is one.
        rows = self._db.query(
            "SELECT * FROM project_keys WHERE project_id = ? ORDER BY active DESC, id", (project_id,)
        )
        return [_key(row) for row in rows]

    def revoke_key(self, project_id: int, public_key: str) -> bool:
        # Ingest refuses the key from then on; revoking twice is not an error.
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE project_keys SET active = 0 WHERE project_id = ? AND public_key = ?",
                (project_id, public_key),
            )
        return cursor.rowcount == 1

    def key_by_public_key(self, public_key: str) -> ProjectKey | None:
        rows = self._db.query("SELECT * FROM project_keys WHERE public_key = ?", (public_key,))
        return _key(rows[0]) if rows else None

    # -- tokens ---------------------------------------------------------------------------

    def create_token(self, organization_id: int, name: str = "", scopes: Iterable[str] = SCOPES) -> str:
        # All scopes unless told: whoever calls the directory directly holds the data directory.
        return self.issue_token(organization_id, name, scopes)[1]

    def issue_token(
        self, organization_id: int, name: str, scopes: Iterable[str], parent_id: int | None = None
    ) -> tuple[Token, str]:
        # Whether the parent may grant these scopes is the caller's question.
        granted = parse_scopes(scopes)
        secret = new_token_secret()
        created = time.time()
        with self._db.transaction() as db:
            if (
                parent_id is not None
                and not db.execute(
                    "SELECT 1 FROM tokens WHERE id = ? AND organization_id = ? AND NOT revoked",
                    (parent_id, organization_id),
                ).fetchone()
            ):
                raise RevokedToken(f"token {parent_id} is revoked")
            cursor = db.execute(
                "INSERT INTO tokens (organization_id, token_hash, name, created, scopes, parent_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (organization_id, token_hash(secret), name, created, " ".join(granted), parent_id),
            )
        token = Token(int(cursor.lastrowid or 0), organization_id, name, created, False, granted, parent_id)
        return token, secret

    def tokens(self, organization_id: int) -> list[Token]:
        rows = self._db.query(
            "SELECT * FROM tokens WHERE organization_id = ? ORDER BY id", (organization_id,)
        )
        return [_token(row) for row in rows]

    def revoke_token(self, organization_id: int, token_id: int) -> bool:
        # Scoped to the organization, so a token of one organization never revokes another's.
        with self._db.transaction() as db:
            if not db.execute(
                "SELECT 1 FROM tokens WHERE organization_id = ? AND id = ?", (organization_id, token_id)
            ).fetchone():
                return False
            db.execute(
                "WITH RECURSIVE family(id) AS (SELECT ? UNION SELECT t.id FROM tokens t JOIN family f"
                " ON t.parent_id = f.id) UPDATE tokens SET revoked = 1 WHERE id IN family",
                (token_id,),
            )
        return True

    def token_for_secret(self, secret: str) -> Token | None:
        rows = self._db.query(
            "SELECT * FROM tokens WHERE token_hash = ? AND NOT revoked", (token_hash(secret),)
        )
        return _token(rows[0]) if rows else None

    def organization_for_token(self, token: str) -> Organization | None:
        found = self.token_for_secret(token)
        return self.organization(found.organization_id) if found is not None else None


def _insert_key(db: sqlite3.Connection, project_id: int) -> ProjectKey:
    public_key = new_public_key()
    cursor = db.execute(
        "INSERT INTO project_keys (project_id, public_key, created) VALUES (?, ?, ?)",
        (project_id, public_key, time.time()),
    )
    return ProjectKey(int(cursor.lastrowid or 0), project_id, public_key, active=True)


def _organization(row: sqlite3.Row) -> Organization:
    return Organization(row["id"], row["slug"], row["name"], row["retention_days"])


def _project(row: sqlite3.Row) -> Project:
    return Project(row["id"], row["organization_id"], row["slug"], row["name"], bool(row["has_profiles"]))


def _key(row: sqlite3.Row) -> ProjectKey:
    return ProjectKey(row["id"], row["project_id"], row["public_key"], bool(row["active"]))


def _token(row: sqlite3.Row) -> Token:
    return Token(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        created=row["created"],
        revoked=bool(row["revoked"]),
        scopes=tuple(row["scopes"].split()),
        parent_id=row["parent_id"],
    )
