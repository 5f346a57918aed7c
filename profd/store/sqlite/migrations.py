"""The index's schema as numbered migrations, keyed on ``PRAGMA user_version``.

A data directory made by any earlier profd opens and is brought up to date; migrations are
only ever appended, never edited.
"""

from __future__ import annotations

import sqlite3

from profd.store.sqlite import flames, rollups

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
    # migration are built by `rollups.rebuild` when this migration runs.
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
    # Outcomes carry an idempotency key (derived from the message that caused them), so a
    # redelivered message adds none twice; outcomes recorded before keys existed have none.
    """
    ALTER TABLE outcomes ADD COLUMN idempotency_key TEXT;
    CREATE UNIQUE INDEX outcomes_by_key ON outcomes (idempotency_key);
    """,
    # Bounded flame aggregates (profd.formats.flame_tree): each profile keeps one tree of at
    # most PROFILE_NODES nodes as a blob, and each hourly bucket, and a new daily bucket,
    # keeps the merged tree of its profiles within its own budget, instead of one row per
    # call-tree path per profile and per bucket.  Frame names are stored once
    # (flame_frames); a daily bucket also sums its function metrics as an hourly one does
    # (day_function_rollup).  `flames.convert` moves the old per-path rows into trees.  Function rows
    # are kept by their key alone (WITHOUT ROWID: no second copy of the key in an index), and
    # the index by time, which no read uses, goes with the old table.
    """
    CREATE TABLE flame_frames (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        package TEXT NOT NULL,
        in_app INTEGER NOT NULL
    );
    CREATE TABLE flame_trees (
        project_id INTEGER NOT NULL,
        profile_id TEXT NOT NULL,
        tree BLOB NOT NULL,
        PRIMARY KEY (project_id, profile_id)
    );
    ALTER TABLE rollup_buckets ADD COLUMN flame BLOB;
    CREATE TABLE day_buckets (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL,
        project_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        transaction_name TEXT NOT NULL,
        release TEXT NOT NULL,
        environment TEXT NOT NULL,
        platform TEXT NOT NULL,
        device_class TEXT NOT NULL,
        profiles INTEGER NOT NULL,
        flame BLOB,
        UNIQUE (project_id, day, transaction_name, release, environment, platform, device_class)
    );
    CREATE INDEX day_buckets_by_day ON day_buckets (organization_id, day);
    CREATE TABLE day_function_rollup (
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
    CREATE TABLE functions_keyed (
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
    ) WITHOUT ROWID;
    INSERT INTO functions_keyed SELECT project_id, profile_id, fingerprint, function, package, in_app, thread_id,
        self_times_ns, total_times_ns, sum_self_time_ns, sample_count, max_duration_ns, start FROM functions;
    DROP TABLE functions;
    ALTER TABLE functions_keyed RENAME TO functions;
    """,
]


def migrate(db: sqlite3.Connection) -> None:
    """Run the migrations the database has not seen, inside the caller's transaction."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in script.split(";"):
            if statement.strip():
                db.execute(statement)
        if "CREATE TABLE function_rollup" in script:
            rollups.rebuild(db)
        if "CREATE TABLE flame_trees" in script:
            flames.convert(db)
            days = {row[0] for row in db.execute("SELECT id FROM day_buckets")}
            rollups.rebuild_functions(db, days, "day_function_rollup")
        db.execute(f"PRAGMA user_version = {number}")
