"""The database's schema, as numbered migrations in SQLite's dialect: appended, never edited.

A database records how many it has applied (``PRAGMA user_version`` on SQLite, the
``schema_version`` table on PostgreSQL); one from a newer veotui is refused."""

from __future__ import annotations

from veotui.store.aggregates import JOBS_NOW_SQL, MIGRATION_SQL, POSTGRES_MIGRATION_SQL

#: Idempotency keys and the webhook outbox, in either dialect (``integer``: the type of a count).
AUTOMATION_SQL = """
    CREATE TABLE idempotency_keys (
        scope TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (scope, idempotency_key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
    CREATE TABLE webhook_deliveries (
        delivery_id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        job_id TEXT,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        tries {integer} NOT NULL DEFAULT 0,
        attempts TEXT NOT NULL DEFAULT '[]',
        next_attempt_at TEXT,
        claimed_by TEXT,
        claimed_until TEXT
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
    CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, created_at);
    CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at)
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, their events, and the moving estimate of generation time per model.
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        queue_seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        prompt TEXT NOT NULL,
        number_of_videos INTEGER NOT NULL,
        model TEXT NOT NULL,
        aspect_ratio TEXT NOT NULL,
        duration_seconds INTEGER NOT NULL,
        resolution TEXT NOT NULL,
        negative_prompt TEXT,
        seed INTEGER,
        user TEXT NOT NULL,
        has_image INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        stage_started_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        error_kind TEXT,
        operation TEXT,
        submitting INTEGER NOT NULL DEFAULT 0,
        videos TEXT NOT NULL DEFAULT '[]',
        downloaded_at TEXT
    );
    CREATE INDEX jobs_status_seq ON jobs (status, queue_seq);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        at TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        kind TEXT NOT NULL DEFAULT 'transition',
        user TEXT,
        model TEXT,
        error_kind TEXT,
        seconds REAL
    );
    CREATE INDEX events_job ON events (job_id, id);
    CREATE TABLE estimates (
        model TEXT PRIMARY KEY,
        seconds REAL NOT NULL,
        samples INTEGER NOT NULL
    );
    CREATE TABLE pending_cleanup (
        job_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        since TEXT NOT NULL
    );
    """,
    # 2: a queue counter that only ever grows, so a deleted job's number is never reused.
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (name, value) SELECT 'queue_seq', COALESCE(MAX(queue_seq), 0) FROM jobs
    """,
    # 3: Veo 3.1 modes: the request's switches, the inputs given, the video a job extends.
    """
    ALTER TABLE jobs ADD COLUMN generate_audio INTEGER;
    ALTER TABLE jobs ADD COLUMN person_generation TEXT;
    ALTER TABLE jobs ADD COLUMN enhance_prompt INTEGER;
    ALTER TABLE jobs ADD COLUMN reference_type TEXT;
    ALTER TABLE jobs ADD COLUMN extends TEXT;
    ALTER TABLE jobs ADD COLUMN has_last_frame INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN reference_count INTEGER NOT NULL DEFAULT 0
    """,
    # 4: money. A job's estimate; whether its operation finished with videos, and what it
    # takes to fetch them again (a retry then pays nothing); what each operation cost, by
    # the UTC day it was created.
    """
    ALTER TABLE jobs ADD COLUMN estimated_cost_usd REAL;
    ALTER TABLE jobs ADD COLUMN operation_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN result TEXT;
    CREATE TABLE spend (
        operation TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        day TEXT NOT NULL,
        at TEXT NOT NULL,
        usd REAL
    );
    CREATE INDEX spend_day ON spend (day)
    """,
    # 5: History's order: a number given at each final transition, from a counter that only
    # grows, so a wall-clock step cannot reorder it. Ended jobs are numbered by finish time.
    """
    ALTER TABLE jobs ADD COLUMN finished_seq INTEGER;
    UPDATE jobs SET finished_seq = ranked.n FROM (
        SELECT job_id, ROW_NUMBER() OVER (ORDER BY finished_at, queue_seq) AS n FROM jobs
        WHERE status IN ('completed', 'failed', 'cancelled')
    ) AS ranked WHERE jobs.job_id = ranked.job_id;
    INSERT INTO counters (name, value) SELECT 'finished_seq', COALESCE(MAX(finished_seq), 0) FROM jobs;
    CREATE INDEX jobs_finished_seq ON jobs (finished_seq)
    """,
    # 6: the queue's pause switch (one row), kept across restarts.
    """
    CREATE TABLE queue_control (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        paused INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        by_budget INTEGER NOT NULL DEFAULT 0,
        since TEXT,
        budget_override_day TEXT
    );
    INSERT INTO queue_control (id, paused) VALUES (1, 0)
    """,
    # 7: aggregates for /metrics, kept in the transaction of each transition, so a scrape
    # never reads the history; filled from the event log for what came before.
    MIGRATION_SQL,
    # 8: downloaded jobs (their auto-delete is due), found at start without reading the history.
    """
    CREATE INDEX jobs_downloaded ON jobs (downloaded_at) WHERE downloaded_at IS NOT NULL
    """,
    # 9: jobs removed by the engine itself (auto-delete), so a later lookup can say why.
    """
    CREATE TABLE tombstones (
        job_id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX tombstones_at ON tombstones (at)
    """,
    # 10: jobs per status, kept by every write (start-up never counts the history).
    JOBS_NOW_SQL,
    # 11: idempotent submits (a key per user, its request's fingerprint and the job it
    # made; the primary key decides between two submits racing) and the webhook outbox (one
    # row per event and hook, written with the change, claimed by the sender that posts it).
    AUTOMATION_SQL.format(integer="INTEGER"),
    # 12: a team on one server: the audit log (paged newest first, by user or by job), each
    # operation's spend by user, and each user's processing and queued jobs with their last
    # start, kept by every write (the fair queue picks a user, then that user's oldest job).
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        job_id TEXT,
        detail TEXT,
        remote_addr TEXT
    );
    CREATE INDEX audit_ts ON audit (ts);
    CREATE INDEX audit_user ON audit (user, ts);
    CREATE INDEX audit_job ON audit (job_id, ts);
    ALTER TABLE spend ADD COLUMN user TEXT;
    UPDATE spend SET user = (SELECT jobs.user FROM jobs WHERE jobs.job_id = spend.job_id);
    CREATE INDEX spend_user_day ON spend (user, day);
    CREATE TABLE user_load (
        user TEXT PRIMARY KEY,
        running INTEGER NOT NULL DEFAULT 0,
        queued INTEGER NOT NULL DEFAULT 0,
        last_start TEXT
    );
    INSERT INTO user_load (user, running, queued, last_start)
        SELECT user, SUM(status NOT IN ('queued', 'completed', 'failed', 'cancelled')),
            SUM(status = 'queued'), MAX(started_at)
        FROM jobs WHERE status NOT IN ('completed', 'failed', 'cancelled') GROUP BY user;
    CREATE INDEX jobs_user_queue ON jobs (user, queue_seq) WHERE status = 'queued'
    """,
)


#: The same schema in PostgreSQL's dialect, numbered alike (a database records one count for
#: either list): 64-bit integers, doubles, ``"user"`` quoted, queue keys as doubles (a move
#: puts a job between two keys). Appended, never edited.
POSTGRES_MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, their events, and the moving estimate of generation time per model.
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        queue_seq DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        prompt TEXT NOT NULL,
        number_of_videos BIGINT NOT NULL,
        model TEXT NOT NULL,
        aspect_ratio TEXT NOT NULL,
        duration_seconds BIGINT NOT NULL,
        resolution TEXT NOT NULL,
        negative_prompt TEXT,
        seed BIGINT,
        "user" TEXT NOT NULL,
        has_image BIGINT NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        stage_started_at TEXT,
        attempts BIGINT NOT NULL DEFAULT 0,
        error TEXT,
        error_kind TEXT,
        operation TEXT,
        submitting BIGINT NOT NULL DEFAULT 0,
        videos TEXT NOT NULL DEFAULT '[]',
        downloaded_at TEXT
    );
    CREATE INDEX jobs_status_seq ON jobs (status, queue_seq);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        job_id TEXT NOT NULL,
        at TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        kind TEXT NOT NULL DEFAULT 'transition',
        "user" TEXT,
        model TEXT,
        error_kind TEXT,
        seconds DOUBLE PRECISION
    );
    CREATE INDEX events_job ON events (job_id, id);
    CREATE TABLE estimates (
        model TEXT PRIMARY KEY,
        seconds DOUBLE PRECISION NOT NULL,
        samples BIGINT NOT NULL
    );
    CREATE TABLE pending_cleanup (
        job_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        since TEXT NOT NULL
    )
    """,
    # 2: a queue counter that only ever grows, so a deleted job's number is never reused.
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
    INSERT INTO counters (name, value) SELECT 'queue_seq', COALESCE(MAX(queue_seq), 0) FROM jobs
    """,
    # 3: Veo 3.1 modes: the request's switches, the inputs given, the video a job extends.
    """
    ALTER TABLE jobs ADD COLUMN generate_audio BIGINT;
    ALTER TABLE jobs ADD COLUMN person_generation TEXT;
    ALTER TABLE jobs ADD COLUMN enhance_prompt BIGINT;
    ALTER TABLE jobs ADD COLUMN reference_type TEXT;
    ALTER TABLE jobs ADD COLUMN extends TEXT;
    ALTER TABLE jobs ADD COLUMN has_last_frame BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN reference_count BIGINT NOT NULL DEFAULT 0
    """,
    # 4: money: a job's estimate, its finished operation's result, the spend by UTC day.
    """
    ALTER TABLE jobs ADD COLUMN estimated_cost_usd DOUBLE PRECISION;
    ALTER TABLE jobs ADD COLUMN operation_done BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN result TEXT;
    CREATE TABLE spend (
        operation TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        day TEXT NOT NULL,
        at TEXT NOT NULL,
        usd DOUBLE PRECISION
    );
    CREATE INDEX spend_day ON spend (day)
    """,
    # 5: History's order, from a counter that only grows.
    """
    ALTER TABLE jobs ADD COLUMN finished_seq BIGINT;
    UPDATE jobs SET finished_seq = ranked.n FROM (
        SELECT job_id, ROW_NUMBER() OVER (ORDER BY finished_at, queue_seq) AS n FROM jobs
        WHERE status IN ('completed', 'failed', 'cancelled')
    ) AS ranked WHERE jobs.job_id = ranked.job_id;
    INSERT INTO counters (name, value) SELECT 'finished_seq', COALESCE(MAX(finished_seq), 0) FROM jobs;
    CREATE INDEX jobs_finished_seq ON jobs (finished_seq)
    """,
    # 6: the queue's pause switch (one row), kept across restarts.
    """
    CREATE TABLE queue_control (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        paused BIGINT NOT NULL DEFAULT 0,
        reason TEXT,
        by_budget BIGINT NOT NULL DEFAULT 0,
        since TEXT,
        budget_override_day TEXT
    );
    INSERT INTO queue_control (id, paused) VALUES (1, 0)
    """,
    # 7: aggregates for /metrics, kept in the transaction of each change.
    POSTGRES_MIGRATION_SQL,
    # 8: downloaded jobs (their auto-delete is due), found at start without reading the history.
    """
    CREATE INDEX jobs_downloaded ON jobs (downloaded_at) WHERE downloaded_at IS NOT NULL
    """,
    # 9: jobs removed by the engine itself (auto-delete), so a later lookup can say why.
    """
    CREATE TABLE tombstones (
        job_id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX tombstones_at ON tombstones (at)
    """,
    # 10: jobs per status, kept by every write (start-up never counts the history).
    JOBS_NOW_SQL,
    # 11: idempotent submits and the webhook outbox.
    AUTOMATION_SQL.format(integer="BIGINT"),
    # 12: a team on one server: the audit log (paged newest first, by user or by job), each
    # operation's spend by user, and each user's processing and queued jobs with their last
    # start, kept by every write (the fair queue picks a user, then that user's oldest job).
    """
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        ts TEXT NOT NULL,
        "user" TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        job_id TEXT,
        detail TEXT,
        remote_addr TEXT
    );
    CREATE INDEX audit_ts ON audit (ts);
    CREATE INDEX audit_user ON audit ("user", ts);
    CREATE INDEX audit_job ON audit (job_id, ts);
    ALTER TABLE spend ADD COLUMN "user" TEXT;
    UPDATE spend SET "user" = (SELECT jobs."user" FROM jobs WHERE jobs.job_id = spend.job_id);
    CREATE INDEX spend_user_day ON spend ("user", day);
    CREATE TABLE user_load (
        "user" TEXT PRIMARY KEY,
        running INTEGER NOT NULL DEFAULT 0,
        queued INTEGER NOT NULL DEFAULT 0,
        last_start TEXT
    );
    INSERT INTO user_load ("user", running, queued, last_start)
        SELECT "user", COUNT(*) FILTER (WHERE status <> 'queued'), COUNT(*) FILTER (WHERE status = 'queued'),
            MAX(started_at)
        FROM jobs WHERE status NOT IN ('completed', 'failed', 'cancelled') GROUP BY "user";
    CREATE INDEX jobs_user_queue ON jobs ("user", queue_seq) WHERE status = 'queued'
    """,
)

#: PostgreSQL-only migrations (the fleet's tables), numbered apart; appended, never edited.
FLEET_MIGRATIONS: tuple[str, ...] = (
    # 1: each running server, with a heartbeat kept by the database's clock.
    """
    CREATE TABLE servers (
        server_id TEXT PRIMARY KEY,
        url TEXT,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    # 2: the server that runs each processing job (lease_until is no longer written).
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_until TIMESTAMPTZ;
    CREATE INDEX jobs_owner ON jobs (owner) WHERE owner IS NOT NULL
    """,
    # 3: a job's lease is its owner's heartbeat: each server's lease, next to its heartbeat.
    """
    ALTER TABLE servers ADD COLUMN lease_seconds DOUBLE PRECISION NOT NULL DEFAULT 30
    """,
)
