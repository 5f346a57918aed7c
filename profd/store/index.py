"""The index: organizations, projects, DSN keys, profile metadata and outcomes, in SQLite.

One SQLite file in WAL mode, so readers (the query side) never block the writer (the
pipeline).  Schema changes are numbered migrations keyed on ``PRAGMA user_version``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from profd.analysis.flame import FlameNode
from profd.analysis.functions import FunctionMetrics
from profd.analysis.metadata import ProfileMetadata
from profd.formats.outcome import DataCategory, Outcome, OutcomeRecord
from profd.store import rollups
from profd.store.rollups import FunctionOccurrences

MIGRATIONS = [
    """
    CREATE TABLE organizations (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        retention_days INTEGER,
        created REAL NOT NULL
    );
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL REFERENCES organizations(id),
        slug TEXT NOT NULL,
        name TEXT NOT NULL,
        has_profiles INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        UNIQUE (organization_id, slug)
    );
    CREATE TABLE project_keys (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id),
        public_key TEXT NOT NULL UNIQUE,
        active INTEGER NOT NULL DEFAULT 1,
        created REAL NOT NULL
    );
    CREATE TABLE profiles (
        organization_id INTEGER NOT NULL,
        project_id INTEGER NOT NULL,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        profiler_id TEXT,
        platform TEXT NOT NULL,
        transaction_name TEXT,
        transaction_id TEXT,
        trace_id TEXT,
        release TEXT,
        environment TEXT,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        duration_ns INTEGER NOT NULL,
        device_class TEXT,
        device_model TEXT,
        os_name TEXT,
        os_version TEXT,
        sdk_name TEXT,
        sdk_version TEXT,
        retention_days INTEGER NOT NULL,
        received INTEGER NOT NULL,
        blob_key TEXT NOT NULL,
        PRIMARY KEY (project_id, profile_id)
    );
    CREATE INDEX profiles_by_start ON profiles (organization_id, project_id, start);
    CREATE TABLE outcomes (
        id INTEGER PRIMARY KEY,
        timestamp REAL NOT NULL,
        org_id INTEGER NOT NULL,
        project_id INTEGER NOT NULL,
        key_id INTEGER,
        outcome INTEGER NOT NULL,
        reason TEXT,
        event_id TEXT,
        category INTEGER NOT NULL,
        quantity INTEGER NOT NULL
    );
    CREATE INDEX outcomes_by_time ON outcomes (org_id, project_id, timestamp);
    """,
    """
    ALTER TABLE profiles ADD COLUMN sampled INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE functions (
        project_id INTEGER NOT NULL,
        profile_id TEXT NOT NULL,
        fingerprint INTEGER NOT NULL,
        function TEXT NOT NULL,
        package TEXT NOT NULL,
        in_app INTEGER NOT NULL,
        thread_id TEXT NOT NULL,
        self_times_ns TEXT NOT NULL,
        total_times_ns TEXT NOT NULL,
        sum_self_time_ns INTEGER NOT NULL,
        sample_count INTEGER NOT NULL,
        max_duration_ns INTEGER NOT NULL,
        start REAL NOT NULL,
        PRIMARY KEY (project_id, profile_id, fingerprint)
    );
    CREATE INDEX functions_by_time ON functions (project_id, start, fingerprint);
    """,
    """
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL REFERENCES organizations(id),
        token_hash TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    """,
    """
    CREATE TABLE flame_nodes (
        project_id INTEGER NOT NULL,
        profile_id TEXT NOT NULL,
        path INTEGER NOT NULL,
        parent INTEGER NOT NULL,
        name TEXT NOT NULL,
        package TEXT NOT NULL,
        in_app INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        sample_count INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        self_time_ns INTEGER NOT NULL,
        PRIMARY KEY (project_id, profile_id, path)
    );
    """,
    # Flamegraphs and the functions table over many profiles read hourly rollups, as
    # Sentry's functions table does: per (project, hour, transaction, release, environment,
    # platform, device class) bucket, the folded call tree and the function metrics summed
    # over its profiles.  A path's frame is stored once (flame_paths) instead of in every
    # profile's and every bucket's rows.  Function rollups of profiles indexed before this
    # migration are built by `Index.rebuild_function_rollups` on first open.
    """
    CREATE TABLE flame_paths (
        path INTEGER PRIMARY KEY,
        parent INTEGER NOT NULL,
        name TEXT NOT NULL,
        package TEXT NOT NULL,
        in_app INTEGER NOT NULL,
        depth INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO flame_paths SELECT path, parent, name, package, in_app, depth FROM flame_nodes;
    CREATE TABLE flame_counts (
        project_id INTEGER NOT NULL,
        profile_id TEXT NOT NULL,
        path INTEGER NOT NULL,
        sample_count INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        self_time_ns INTEGER NOT NULL,
        PRIMARY KEY (project_id, profile_id, path)
    ) WITHOUT ROWID;
    INSERT INTO flame_counts
        SELECT project_id, profile_id, path, sample_count, duration_ns, self_time_ns FROM flame_nodes;
    DROP TABLE flame_nodes;
    ALTER TABLE flame_counts RENAME TO flame_nodes;
    CREATE TABLE rollup_buckets (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL,
        project_id INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        transaction_name TEXT NOT NULL,
        release TEXT NOT NULL,
        environment TEXT NOT NULL,
        platform TEXT NOT NULL,
        device_class TEXT NOT NULL,
        profiles INTEGER NOT NULL,
        UNIQUE (project_id, hour, transaction_name, release, environment, platform, device_class)
    );
    CREATE INDEX rollup_buckets_by_hour ON rollup_buckets (organization_id, hour);
    CREATE TABLE flame_rollup (
        bucket INTEGER NOT NULL,
        path INTEGER NOT NULL,
        occurrences INTEGER NOT NULL,
        sample_count INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        self_time_ns INTEGER NOT NULL,
        PRIMARY KEY (bucket, path)
    ) WITHOUT ROWID;
    CREATE TABLE function_rollup (
        bucket INTEGER NOT NULL,
        fingerprint INTEGER NOT NULL,
        function TEXT NOT NULL,
        package TEXT NOT NULL,
        in_app INTEGER NOT NULL,
        occurrences INTEGER NOT NULL,
        sum_self_time_ns INTEGER NOT NULL,
        worst_ns INTEGER NOT NULL,
        worst_profile_id TEXT NOT NULL,
        examples TEXT NOT NULL,
        self_times BLOB NOT NULL,
        PRIMARY KEY (bucket, fingerprint)
    ) WITHOUT ROWID;
    INSERT INTO rollup_buckets (organization_id, project_id, hour, transaction_name, release, environment,
                               platform, device_class, profiles)
        SELECT organization_id, project_id, CAST(start / 3600 AS INTEGER) * 3600, IFNULL(transaction_name, ''),
               IFNULL(release, ''), IFNULL(environment, ''), platform, IFNULL(device_class, ''), COUNT(*)
        FROM profiles WHERE sampled GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    INSERT INTO flame_rollup
        SELECT b.id, f.path, COUNT(*), SUM(f.sample_count), SUM(f.duration_ns), SUM(f.self_time_ns)
        FROM profiles p
        JOIN flame_nodes f ON f.project_id = p.project_id AND f.profile_id = p.profile_id
        JOIN rollup_buckets b ON b.project_id = p.project_id AND b.hour = CAST(p.start / 3600 AS INTEGER) * 3600
            AND b.transaction_name = IFNULL(p.transaction_name, '') AND b.release = IFNULL(p.release, '')
            AND b.environment = IFNULL(p.environment, '') AND b.platform = p.platform
            AND b.device_class = IFNULL(p.device_class, '')
        WHERE p.sampled GROUP BY b.id, f.path;
    """,
    """
    ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
    """,
    # Scopes as Sentry's.  Tokens made before scopes existed could do everything, and keep
    # doing so: no current user loses access on upgrade.  parent_id is the token that minted
    # this one through the API (NULL: made by the CLI), so revoking a token revokes its children.
    """
    ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN parent_id INTEGER REFERENCES tokens(id);
    UPDATE tokens SET scopes = 'org:read project:write project:releases org:admin';
    CREATE INDEX tokens_by_parent ON tokens (parent_id);
    """,
]

# Per-occurrence times are kept as JSON arrays: read whole, never queried inside.
_encode_times = msgspec.json.Encoder().encode
_decode_times = msgspec.json.Decoder(list[int]).decode


# Project slugs go into URLs and DSN listings.  All-digit slugs are refused because the API
# takes a project's slug or its id in the same path segment, and "7" must mean project 7.
SLUG = re.compile(r"[a-z0-9_-]{1,50}")


class InvalidSlug(ValueError):
    """A project slug outside the rule (``SLUG``, not all digits)."""


class SlugTaken(Exception):
    """The organization already has a project with this slug."""


# A token's scopes, named as Sentry's.  What each lets a token do is the web layer's
# business (profd.web.auth); the index only refuses names that are not scopes.
Scope = Literal["org:read", "project:write", "project:releases", "org:admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


class InvalidScope(ValueError):
    """A scope name profd does not know, or no scope at all."""


class RevokedToken(Exception):
    """A token was to be minted by one that has been revoked meanwhile."""


def parse_scopes(names: Iterable[str]) -> tuple[Scope, ...]:
    """Known scope names, once each and in ``SCOPES`` order; InvalidScope otherwise."""
    wanted = set(names)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidScope(
            f"unknown scope {', '.join(map(repr, unknown))}: the scopes are {', '.join(SCOPES)}"
        )
    if not wanted:
        raise InvalidScope(f"a token needs at least one scope of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


class Organization(msgspec.Struct, frozen=True):
    id: int
    slug: str
    name: str
    retention_days: int | None


class Project(msgspec.Struct, frozen=True):
    id: int
    organization_id: int
    slug: str
    name: str
    has_profiles: bool


class ProjectKey(msgspec.Struct, frozen=True):
    id: int
    project_id: int
    public_key: str
    active: bool


class Token(msgspec.Struct, frozen=True):
    """A bearer token as listed: never the secret, which only its creator ever sees."""

    id: int
    organization_id: int
    name: str
    created: float
    revoked: bool
    scopes: tuple[str, ...]
    parent_id: int | None = None


class OutcomeCount(msgspec.Struct, frozen=True):
    outcome: Outcome
    reason: str | None
    category: DataCategory
    times: int
    quantity: int


# Ids are 64-bit (SQLite integers, ClickHouse Int64): a larger one names nothing.
ID_LIMIT = 2**63


class Index:
    """The SQLite index.  Safe to share between threads: one connection behind a lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if "CREATE TABLE function_rollup" in script:
                    rollups.rebuild(db)
                db.execute(f"PRAGMA user_version = {number}")

    # -- organizations, projects, keys ---------------------------------------------------

    def create_organization(self, slug: str, name: str | None = None) -> Organization:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO organizations (slug, name, created) VALUES (?, ?, ?)",
                (slug, name or slug, time.time()),
            )
        return Organization(id=int(cursor.lastrowid or 0), slug=slug, name=name or slug, retention_days=None)

    def organization(self, organization_id: int) -> Organization | None:
        rows = self._query("SELECT * FROM organizations WHERE id = ?", (organization_id,))
        return _organization(rows[0]) if rows else None

    def organization_by_slug(self, slug: str) -> Organization | None:
        rows = self._query("SELECT * FROM organizations WHERE slug = ?", (slug,))
        return _organization(rows[0]) if rows else None

    def create_project(self, organization_id: int, slug: str, name: str | None = None) -> Project:
        """A new project and its first DSN key, both or neither.

        Raises InvalidSlug for a slug outside the rule and SlugTaken for one in use.
        """
        if not SLUG.fullmatch(slug) or slug.isdigit():
            raise InvalidSlug(
                f"invalid slug {slug!r}: 1 to 50 lowercase letters, digits, '-' or '_', not only digits"
            )
        try:
            with self._transaction() as db:
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
        rows = self._query("SELECT * FROM projects WHERE id = ?", (project_id,))
        return _project(rows[0]) if rows else None

    def projects(self, organization_id: int | None = None) -> list[Project]:
        if organization_id is None:
            rows = self._query("SELECT * FROM projects ORDER BY id")
        else:
            rows = self._query(
                "SELECT * FROM projects WHERE organization_id = ? ORDER BY id", (organization_id,)
            )
        return [_project(row) for row in rows]

    def create_key(self, project_id: int) -> ProjectKey:
        with self._transaction() as db:
            return _insert_key(db, project_id)

    def keys(self, project_id: int) -> list[ProjectKey]:
        """The project's DSN keys, active ones first, oldest first within each.

        Whoever shows "the" DSN of a project takes the first: an active key while there is one.
        """
        rows = self._query(
            "SELECT * FROM project_keys WHERE project_id = ? ORDER BY active DESC, id", (project_id,)
        )
        return [
            ProjectKey(row["id"], row["project_id"], row["public_key"], bool(row["active"])) for row in rows
        ]

    def revoke_key(self, project_id: int, public_key: str) -> bool:
        """Deactivate a key of the project (ingest refuses it from then on); False if the
        project has no such key.  Revoking twice is not an error."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE project_keys SET active = 0 WHERE project_id = ? AND public_key = ?",
                (project_id, public_key),
            )
        return cursor.rowcount == 1

    def key_by_public_key(self, public_key: str) -> ProjectKey | None:
        rows = self._query("SELECT * FROM project_keys WHERE public_key = ?", (public_key,))
        if not rows:
            return None
        row = rows[0]
        return ProjectKey(row["id"], row["project_id"], row["public_key"], bool(row["active"]))

    def create_token(self, organization_id: int, name: str = "", scopes: Iterable[str] = SCOPES) -> str:
        """A new bearer token for the organization; only its hash is kept, so it is shown once.

        All scopes unless told: whoever calls the index directly holds the data directory."""
        return self.issue_token(organization_id, name, scopes)[1]

    def issue_token(
        self, organization_id: int, name: str, scopes: Iterable[str], parent_id: int | None = None
    ) -> tuple[Token, str]:
        """A new bearer token: its listing and its secret (the only time the secret exists).

        `parent_id` is the token minting it, which must still be live (else RevokedToken):
        revoking a token revokes the tokens it minted.  Whether the parent may grant these
        scopes is the caller's question.  Raises InvalidScope for unknown or no scopes."""
        granted = parse_scopes(scopes)
        secret = "profd_" + secrets.token_urlsafe(32)
        created = time.time()
        with self._transaction() as db:
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
                (organization_id, _token_hash(secret), name, created, " ".join(granted), parent_id),
            )
        token = Token(int(cursor.lastrowid or 0), organization_id, name, created, False, granted, parent_id)
        return token, secret

    def tokens(self, organization_id: int) -> list[Token]:
        """The organization's tokens, revoked ones included, oldest first."""
        rows = self._query("SELECT * FROM tokens WHERE organization_id = ? ORDER BY id", (organization_id,))
        return [_token(row) for row in rows]

    def revoke_token(self, organization_id: int, token_id: int) -> bool:
        """Revoke one of the organization's tokens and every token minted under it; False if
        it has no token `token_id`, so a token of one organization can never revoke another's."""
        with self._transaction() as db:
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
        """The live token whose secret this is (revoked ones are None, as unknown ones)."""
        rows = self._query(
            "SELECT * FROM tokens WHERE token_hash = ? AND NOT revoked", (_token_hash(secret),)
        )
        return _token(rows[0]) if rows else None

    def organization_for_token(self, token: str) -> Organization | None:
        found = self.token_for_secret(token)
        return self.organization(found.organization_id) if found is not None else None

    def project_by_slug(self, organization_id: int, slug: str) -> Project | None:
        rows = self._query(
            "SELECT * FROM projects WHERE organization_id = ? AND slug = ?", (organization_id, slug)
        )
        return _project(rows[0]) if rows else None

    def mark_has_profiles(self, project_id: int) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE projects SET has_profiles = 1 WHERE id = ? AND has_profiles = 0", (project_id,)
            )
        return cursor.rowcount == 1

    # -- profiles ------------------------------------------------------------------------

    def insert_profile(
        self,
        metadata: ProfileMetadata,
        functions: Sequence[FunctionMetrics] = (),
        flame: Sequence[FlameNode] = (),
    ) -> bool:
        """Index a profile, its functions and its folded call tree; False when it was indexed
        already (a redelivery)."""
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
        with self._transaction() as db:
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
                self._insert_flame(db, metadata, flame)
                if metadata.sampled:
                    occurrences = [
                        FunctionOccurrences(
                            f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns, f.max_duration
                        )
                        for f in functions
                    ]
                    rollups.add_profile(db, metadata, occurrences, flame)
        return cursor.rowcount == 1

    def _insert_flame(
        self, db: sqlite3.Connection, metadata: ProfileMetadata, flame: Sequence[FlameNode]
    ) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO flame_paths VALUES (?, ?, ?, ?, ?, ?)",
            [(n.path, n.parent, n.name, n.package, n.in_app, n.depth) for n in flame],
        )
        db.executemany(
            "INSERT OR IGNORE INTO flame_nodes VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    metadata.project_id,
                    metadata.profile_id,
                    n.path,
                    n.sample_count,
                    n.duration_ns,
                    n.self_time_ns,
                )
                for n in flame
            ],
        )

    def functions(self, project_id: int, profile_id: str) -> list[FunctionMetrics]:
        """A profile's functions, slowest first (as extracted at write time)."""
        rows = self._query(
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
                self_times_ns=_decode_times(row["self_times_ns"]),
                total_times_ns=_decode_times(row["total_times_ns"]),
                sum_self_time_ns=row["sum_self_time_ns"],
                sample_count=row["sample_count"],
                max_duration=row["max_duration_ns"],
            )
            for row in rows
        ]

    def profile(self, project_id: int, profile_id: str) -> ProfileMetadata | None:
        rows = self._query(
            "SELECT * FROM profiles WHERE project_id = ? AND profile_id = ?", (project_id, profile_id)
        )
        return _metadata(rows[0]) if rows else None

    def find_profile(self, profile_id: str) -> ProfileMetadata | None:
        """A profile by id in any project (sampled or not)."""
        rows = self._query("SELECT * FROM profiles WHERE profile_id = ? LIMIT 1", (profile_id,))
        return _metadata(rows[0]) if rows else None

    def profiles(self, project_id: int | None = None, limit: int = 100) -> list[ProfileMetadata]:
        """Stored (sampled) profiles, newest first."""
        if project_id is None:
            rows = self._query("SELECT * FROM profiles WHERE sampled ORDER BY start DESC LIMIT ?", (limit,))
        else:
            rows = self._query(
                "SELECT * FROM profiles WHERE sampled AND project_id = ? ORDER BY start DESC LIMIT ?",
                (project_id, limit),
            )
        return [_metadata(row) for row in rows]

    def expired(self, now: float, limit: int = 1000) -> list[ProfileMetadata]:
        """Profiles (sampled or not) whose retention has passed, oldest first."""
        rows = self._query(
            "SELECT * FROM profiles WHERE start + retention_days * 86400 < ? ORDER BY start LIMIT ?",
            (now, limit),
        )
        return [_metadata(row) for row in rows]

    def delete_profiles(self, profiles: Sequence[ProfileMetadata]) -> None:
        """Remove profiles and everything indexed with them (functions, folded call trees)."""
        keys = [(m.project_id, m.profile_id) for m in profiles]
        with self._transaction() as db:
            touched = {rollups.remove_profile(db, m) for m in profiles if m.sampled}
            for table in ("functions", "flame_nodes", "profiles"):
                db.executemany(f"DELETE FROM {table} WHERE project_id = ? AND profile_id = ?", keys)
            rollups.rebuild_functions(db, {bucket for bucket in touched if bucket is not None})

    def select(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """A read-only query for the read side (`profd.query`)."""
        if not sql.lstrip().upper().startswith("SELECT"):
            raise ValueError("select() only reads")
        return self._query(sql, params)

    # -- outcomes ------------------------------------------------------------------------

    def record_outcome(self, record: OutcomeRecord) -> None:
        self.record_outcomes([record])

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> None:
        """Several outcomes in one transaction: an envelope's rejections cost one write."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO outcomes (timestamp, org_id, project_id, key_id, outcome, reason, event_id,"
                " category, quantity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    )
                    for record in records
                ],
            )

    def expire_outcomes(self, now: float, default_retention_days: int) -> int:
        """Delete outcomes past their organization's retention (the profiles' retention), so
        the outcomes table stops growing; returns how many were deleted."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM outcomes WHERE timestamp < ? - 86400 * COALESCE("
                "(SELECT retention_days FROM organizations o WHERE o.id = outcomes.org_id), ?)",
                (now, default_retention_days),
            )
        return cursor.rowcount

    def outcome_counts(self, project_id: int | None = None) -> list[OutcomeCount]:
        where, params = ("WHERE project_id = ?", (project_id,)) if project_id is not None else ("", ())
        rows = self._query(
            "SELECT outcome, reason, category, COUNT(*) AS times, SUM(quantity) AS quantity FROM outcomes "
            f"{where} GROUP BY outcome, reason, category ORDER BY outcome, category, reason",
            params,
        )
        return [
            OutcomeCount(
                Outcome(row["outcome"]),
                row["reason"],
                DataCategory(row["category"]),
                row["times"],
                row["quantity"],
            )
            for row in rows
        ]


def _insert_key(db: sqlite3.Connection, project_id: int) -> ProjectKey:
    public_key = secrets.token_hex(16)
    cursor = db.execute(
        "INSERT INTO project_keys (project_id, public_key, created) VALUES (?, ?, ?)",
        (project_id, public_key, time.time()),
    )
    return ProjectKey(
        id=int(cursor.lastrowid or 0), project_id=project_id, public_key=public_key, active=True
    )


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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _organization(row: sqlite3.Row) -> Organization:
    return Organization(row["id"], row["slug"], row["name"], row["retention_days"])


def _project(row: sqlite3.Row) -> Project:
    return Project(row["id"], row["organization_id"], row["slug"], row["name"], bool(row["has_profiles"]))


def _metadata(row: sqlite3.Row) -> ProfileMetadata:
    return msgspec.convert(dict(row), ProfileMetadata, strict=False)
