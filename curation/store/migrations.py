"""Versioned schema migrations for the store (one list for DuckDB and PostgreSQL).

Append a new `Migration` to `MIGRATIONS` to change the schema; never edit an applied one.
Each migration runs in the same transaction as its `schema_migrations` row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def apply_migrations(con: Any, now: Callable[[], datetime]) -> None:
    """Run the migrations `con`'s store has not applied, each in its own transaction with its
    `schema_migrations` row (a DuckDB connection, or a `PgConnection`: one runner for both)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    applied = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [migration.version, migration.name, now()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_LABEL = "('reasoning', 'knowledge')"

INITIAL = Migration(
    1,
    "initial tables",
    (
        # One row per canonical question. `options` is a JSON object {letter: text}.
        """CREATE TABLE questions (
            id VARCHAR PRIMARY KEY,
            dataset_name VARCHAR NOT NULL,
            split VARCHAR NOT NULL,
            question VARCHAR NOT NULL,
            options JSON NOT NULL,
            answer_idx VARCHAR NOT NULL,
            answer VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            meta JSON,
            text_hash VARCHAR NOT NULL,
            n_duplicates INTEGER NOT NULL DEFAULT 0,
            ingest_id VARCHAR,
            ingested_at TIMESTAMP NOT NULL
        )""",
        # Exact duplicates merged into a canonical question keep their own id here.
        """CREATE TABLE question_aliases (
            alias_id VARCHAR PRIMARY KEY,
            question_id VARCHAR NOT NULL,
            ingest_id VARCHAR,
            created_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE ingests (
            id VARCHAR PRIMARY KEY,
            paths JSON NOT NULL,
            sha256 JSON NOT NULL,
            benchmark VARCHAR,
            split VARCHAR,
            n_rows INTEGER NOT NULL,
            n_new INTEGER NOT NULL,
            n_duplicates INTEGER NOT NULL,
            n_unchanged INTEGER NOT NULL,
            n_skipped INTEGER NOT NULL,
            n_labels INTEGER NOT NULL,
            n_predictions INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        # Append-only: a change is a new row; nothing is updated or deleted.
        # The current label of (question, annotator) is its latest 'label' or 'retract' row.
        "CREATE SEQUENCE annotations_seq START 1",
        f"""CREATE TABLE annotations (
            seq BIGINT PRIMARY KEY DEFAULT nextval('annotations_seq'),
            event_id VARCHAR NOT NULL UNIQUE,
            question_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            action VARCHAR NOT NULL CHECK (action IN ('label', 'retract', 'skip')),
            label VARCHAR CHECK (label IS NULL OR label IN {_LABEL}),
            confidence INTEGER CHECK (confidence IS NULL OR confidence BETWEEN 1 AND 3),
            rationale VARCHAR,
            source VARCHAR NOT NULL CHECK (source IN ('app', 'label_studio', 'import')),
            source_ref VARCHAR,
            guidelines_version VARCHAR,
            suggestion_shown BOOLEAN NOT NULL DEFAULT false,
            batch_id VARCHAR,
            created_at TIMESTAMP NOT NULL
        )""",
        "CREATE SEQUENCE adjudications_seq START 1",
        f"""CREATE TABLE adjudications (
            seq BIGINT PRIMARY KEY DEFAULT nextval('adjudications_seq'),
            question_id VARCHAR NOT NULL,
            label VARCHAR NOT NULL CHECK (label IN {_LABEL}),
            maintainer VARCHAR NOT NULL,
            note VARCHAR,
            created_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE users (
            name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL CHECK (role IN ('annotator', 'maintainer')),
            password_hash VARCHAR NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE batches (
            id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL CHECK (kind IN ('gold', 'active', 'manual')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            show_suggestions BOOLEAN NOT NULL DEFAULT false,
            strategy VARCHAR,
            model_version VARCHAR,
            created_by VARCHAR,
            note VARCHAR,
            created_at TIMESTAMP NOT NULL
        )""",
        f"""CREATE TABLE batch_items (
            batch_id VARCHAR NOT NULL,
            question_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            suggestion_label VARCHAR CHECK (suggestion_label IS NULL OR suggestion_label IN {_LABEL}),
            suggestion_prob DOUBLE,
            PRIMARY KEY (batch_id, question_id)
        )""",
        # A lease: the item is reserved for the annotator until expires_at (or labeled).
        """CREATE TABLE assignments (
            batch_id VARCHAR NOT NULL,
            question_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            assigned_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            PRIMARY KEY (batch_id, question_id, annotator)
        )""",
        """CREATE TABLE models (
            version VARCHAR PRIMARY KEY,
            base_model VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            path VARCHAR,
            round INTEGER,
            n_train INTEGER,
            train_source VARCHAR,
            threshold DOUBLE,
            metrics JSON,
            created_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE predictions (
            model_version VARCHAR NOT NULL,
            question_id VARCHAR NOT NULL,
            reasoning_prob DOUBLE NOT NULL CHECK (reasoning_prob BETWEEN 0 AND 1),
            is_reasoning BOOLEAN NOT NULL,
            reasoning_threshold DOUBLE NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model_version, question_id)
        )""",
        """CREATE TABLE releases (
            version VARCHAR PRIMARY KEY,
            path VARCHAR NOT NULL,
            manifest JSON NOT NULL,
            content_hash VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""",
        """CREATE TABLE publications (
            release_version VARCHAR NOT NULL,
            repo_id VARCHAR NOT NULL,
            endpoint VARCHAR NOT NULL,
            private BOOLEAN NOT NULL,
            revision VARCHAR,
            commit_sha VARCHAR,
            tag VARCHAR,
            published_at TIMESTAMP NOT NULL
        )""",
    ),
)

MIGRATIONS: list[Migration] = [INITIAL]

# Label Studio sync state (curation.store.labelstudio). Labels themselves live in
# `annotations` (source='label_studio'); these tables only say what was pushed where and
# which Label Studio annotation versions have been pulled already.
LABEL_STUDIO = Migration(
    2,
    "label studio sync state",
    (
        # One row per Label Studio project we push to (server = normalized base URL).
        """CREATE TABLE ls_projects (
            server VARCHAR NOT NULL,
            project_id BIGINT NOT NULL,
            name VARCHAR NOT NULL,
            overlap INTEGER NOT NULL,
            show_suggestions BOOLEAN NOT NULL,
            guidelines_version VARCHAR,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (server, project_id)
        )""",
        # Task <-> question map; UNIQUE (project, question) makes push idempotent.
        """CREATE TABLE ls_tasks (
            server VARCHAR NOT NULL,
            project_id BIGINT NOT NULL,
            task_id BIGINT NOT NULL,
            question_id VARCHAR NOT NULL,
            batch_id VARCHAR,
            suggestion_shown BOOLEAN NOT NULL,
            pushed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (server, project_id, task_id),
            UNIQUE (server, project_id, question_id)
        )""",
        # Label Studio user -> our annotator name (fixed on first sight, or set explicitly).
        """CREATE TABLE ls_users (
            server VARCHAR NOT NULL,
            ls_user_id BIGINT NOT NULL,
            email VARCHAR,
            annotator VARCHAR NOT NULL,
            explicit BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (server, ls_user_id)
        )""",
        # Append-only: every version of a Label Studio annotation we turned into a row
        # (kind 'version'), and its deletion (kind 'deleted').
        """CREATE TABLE ls_annotation_versions (
            server VARCHAR NOT NULL,
            project_id BIGINT NOT NULL,
            ls_annotation_id BIGINT NOT NULL,
            updated_at VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('version', 'deleted')),
            task_id BIGINT NOT NULL,
            question_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            event_id VARCHAR NOT NULL,
            seen_at TIMESTAMP NOT NULL,
            PRIMARY KEY (server, project_id, ls_annotation_id, updated_at, kind)
        )""",
        "CREATE SEQUENCE ls_sync_log_seq START 1",
        """CREATE TABLE ls_sync_log (
            seq BIGINT PRIMARY KEY DEFAULT nextval('ls_sync_log_seq'),
            server VARCHAR NOT NULL,
            project_id BIGINT,
            direction VARCHAR NOT NULL CHECK (direction IN ('push', 'pull')),
            batch_id VARCHAR,
            status VARCHAR NOT NULL CHECK (status IN ('ok', 'failed')),
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            n_tasks INTEGER NOT NULL DEFAULT 0,
            n_new_rows INTEGER NOT NULL DEFAULT 0,
            n_deleted INTEGER NOT NULL DEFAULT 0,
            n_pages INTEGER NOT NULL DEFAULT 0,
            message VARCHAR
        )""",
    ),
)

MIGRATIONS.append(LABEL_STUDIO)

# Which questions each model was trained and validated on: model-vs-human agreement is
# computed only on the others (no leakage), and release rows say `in_model_training`.
MODEL_ITEMS = Migration(
    3,
    "question ids each model saw",
    (
        """CREATE TABLE model_items (
            model_version VARCHAR NOT NULL,
            question_id VARCHAR NOT NULL,
            role VARCHAR NOT NULL CHECK (role IN ('train', 'validation')),
            PRIMARY KEY (model_version, question_id, role)
        )""",
    ),
)

MIGRATIONS.append(MODEL_ITEMS)

# Each account's annotation expertise: the card's `annotations_creators` is derived from the
# expertise of the people whose labels are in a release (`curation.card`). Levels:
# `curation.store.users.EXPERTISE_LEVELS`; accounts made before this migration get 'unknown'.
USER_EXPERTISE = Migration(
    4,
    "annotator expertise per user",
    ("ALTER TABLE users ADD COLUMN expertise VARCHAR DEFAULT 'unknown'",
     "UPDATE users SET expertise = 'unknown' WHERE expertise IS NULL"),
)

MIGRATIONS.append(USER_EXPERTISE)

# An ingest writes its questions in bounded chunks (no annotator waits long behind it) yet
# appears whole or not at all: the rows live in `question_rows`; the view `questions`, which
# every reader uses, hides the rows of ingests still listed in `pending_ingests`. The ingest's
# last transaction removes its pending row; a killed ingest's rows are deleted by the next
# one (`curation.store.questions.drop_stale_pending`). Writers write `question_rows`.
PENDING_INGESTS = Migration(
    5,
    "questions written in chunks, shown when their ingest completes",
    (
        "ALTER TABLE questions RENAME TO question_rows",
        """CREATE TABLE pending_ingests (
            ingest_id VARCHAR PRIMARY KEY,
            pid INTEGER NOT NULL,
            started_at TIMESTAMP NOT NULL
        )""",
        """CREATE VIEW questions AS SELECT * FROM question_rows
           WHERE ingest_id IS NULL OR ingest_id NOT IN (SELECT ingest_id FROM pending_ingests)""",
    ),
)

MIGRATIONS.append(PENDING_INGESTS)

# Scoring a large pool writes its predictions in bounded chunks too: the rows live in
# `prediction_rows`; the view `predictions` hides a model version while its first scoring is
# still being written (`pending_predictions`), so no reader sees a model half-scored.
PENDING_PREDICTIONS = Migration(
    10,
    "predictions written in chunks, shown when the scoring completes",
    (
        "ALTER TABLE predictions RENAME TO prediction_rows",
        """CREATE TABLE pending_predictions (
            model_version VARCHAR PRIMARY KEY,
            pid INTEGER NOT NULL,
            started_at TIMESTAMP NOT NULL
        )""",
        """CREATE VIEW predictions AS SELECT * FROM prediction_rows
           WHERE model_version NOT IN (SELECT model_version FROM pending_predictions)""",
    ),
)

MIGRATIONS.append(PENDING_PREDICTIONS)

# Label Studio projects that survive real use (issue #17). `ls_servers`: the stable key a
# server's rows are stored under (`server` in every ls_* table and in event ids: the first
# URL it was reached at) -> its current URL and its identity (organization id and creation
# time), so the same server under another URL is recognised; `curation ls move` re-points
# it. `ls_projects` gains the label config we pushed (drift check) and retirement.
# `ls_annotation_versions` gains who edited (an edit by someone other than the annotator is
# the editor's row; `edited_from` names the original annotator), time spent, whether the
# suggestion was accepted unchanged, and the ground-truth flag.
LABEL_STUDIO_PROJECTS = Migration(
    6,
    "label studio server identity, project retirement, config drift, edit provenance",
    (
        """CREATE TABLE ls_servers (
            server VARCHAR PRIMARY KEY,
            url VARCHAR NOT NULL UNIQUE,
            identity VARCHAR,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )""",
        """INSERT INTO ls_servers SELECT DISTINCT server, server, NULL::VARCHAR,
               current_timestamp::TIMESTAMP, current_timestamp::TIMESTAMP FROM ls_projects""",
        "ALTER TABLE ls_projects ADD COLUMN label_config VARCHAR",
        "ALTER TABLE ls_projects ADD COLUMN retired_at TIMESTAMP",
        "ALTER TABLE ls_projects ADD COLUMN retired_reason VARCHAR",
        "ALTER TABLE ls_annotation_versions ADD COLUMN ls_completed_by BIGINT",
        "ALTER TABLE ls_annotation_versions ADD COLUMN ls_updated_by BIGINT",
        "ALTER TABLE ls_annotation_versions ADD COLUMN edited_from VARCHAR",
        "ALTER TABLE ls_annotation_versions ADD COLUMN lead_time DOUBLE",
        "ALTER TABLE ls_annotation_versions ADD COLUMN accepted_prediction BOOLEAN",
        "ALTER TABLE ls_annotation_versions ADD COLUMN ground_truth BOOLEAN",
    ),
)

MIGRATIONS.append(LABEL_STUDIO_PROJECTS)

# Background jobs (`curation worker`, `curation.services.loop`): one row per job with its
# state, lease and progress; the loop's policy (one row, JSON checked by
# `curation.jobs.LoopPolicy`) and the history of its rounds. Rules: `curation.jobs`.
JOBS = Migration(
    9,
    "background jobs, the loop policy and its rounds",
    (
        "CREATE SEQUENCE jobs_seq START 1",
        """CREATE TABLE jobs (
            id BIGINT PRIMARY KEY DEFAULT nextval('jobs_seq'),
            kind VARCHAR NOT NULL CHECK (kind IN ('train', 'classify', 'al-next', 'release-build', 'ls-pull')),
            params JSON NOT NULL,
            state VARCHAR NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            progress DOUBLE NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
            message VARCHAR,
            requested_by VARCHAR,
            depends_on BIGINT,
            loop_round INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 3,
            created_at TIMESTAMP NOT NULL,
            started_at TIMESTAMP,
            finished_at TIMESTAMP,
            heartbeat_at TIMESTAMP,
            worker_id VARCHAR,
            lease_expires_at TIMESTAMP,
            log_tail VARCHAR,
            result JSON,
            error VARCHAR
        )""",
        """CREATE TABLE loop_policy (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            policy JSON NOT NULL,
            paused BOOLEAN NOT NULL DEFAULT false,
            stopped_reason VARCHAR,
            updated_at TIMESTAMP NOT NULL,
            updated_by VARCHAR
        )""",
        """CREATE TABLE loop_rounds (
            round INTEGER PRIMARY KEY,
            state VARCHAR NOT NULL CHECK (state IN ('running', 'done', 'failed', 'stopped')),
            forced BOOLEAN NOT NULL DEFAULT false,
            requested_by VARCHAR,
            label_seq BIGINT NOT NULL,
            n_new_labels INTEGER NOT NULL,
            policy JSON NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            model_version VARCHAR,
            batch_id VARCHAR,
            status JSON,
            message VARCHAR
        )""",
    ),
)

MIGRATIONS.append(JOBS)

# Logged-in sessions of the annotation app, kept on the server so that a reload or a new tab
# stays logged in (the browser holds only the random token, in a cookie) and logout, a
# disabled account or a reset password ends them. Only the token's SHA-256 is stored.
APP_SESSIONS = Migration(
    7,
    "app sessions (hashed tokens, expiry, revocation)",
    (
        """CREATE TABLE app_sessions (
            token_hash VARCHAR PRIMARY KEY,
            user_name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            last_seen TIMESTAMP NOT NULL,
            revoked_at TIMESTAMP,
            revoked_why VARCHAR
        )""",
    ),
)

MIGRATIONS.append(APP_SESSIONS)

# Drafts on the Label page (`curation.store.drafts`): what an annotator has typed or chosen
# for the question leased to them, so that a reload shows it again. Not labels: deleted when
# the question is labeled or skipped, or when the lease has moved on.
DRAFTS = Migration(
    11,
    "label page drafts (rationale, label, confidence) per annotator and question",
    (
        f"""CREATE TABLE drafts (
            user_name VARCHAR NOT NULL,
            question_id VARCHAR NOT NULL,
            rationale VARCHAR,
            label VARCHAR CHECK (label IS NULL OR label IN {_LABEL}),
            confidence INTEGER CHECK (confidence IS NULL OR confidence BETWEEN 1 AND 3),
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (user_name, question_id)
        )""",
    ),
)

MIGRATIONS.append(DRAFTS)

# Lookups the queue makes in every lease/submit transaction: by (question, annotator) in
# `annotations` and by annotator in `assignments`. On PostgreSQL without them each is a scan
# of the whole table inside the queue's lock (benchmarks/labeling.py --backend postgres).
QUEUE_INDEXES = Migration(
    13,
    "indexes for the queue's lookups",
    (
        "CREATE INDEX annotations_question_annotator ON annotations (question_id, annotator)",
        "CREATE INDEX assignments_annotator ON assignments (annotator, question_id)",
    ),
)

MIGRATIONS.append(QUEUE_INDEXES)

# Sequences and the key each one draws: `curation store copy` moves them past copied rows.
SEQUENCES: tuple[tuple[str, str, str], ...] = (
    ("annotations_seq", "annotations", "seq"),
    ("adjudications_seq", "adjudications", "seq"),
    ("ls_sync_log_seq", "ls_sync_log", "seq"),
    ("jobs_seq", "jobs", "id"),
)
