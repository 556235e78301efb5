"""PostgreSQL side of the bench: the throw-away database, row counts and the raw insert floor.

Everything here talks to PostgreSQL directly with psycopg; Django is only used by the server
under test (and by `manage.py` for migrations), never imported by the bench process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
# LEADPORTAL_BENCH_DB: another database for a suite run beside one on the default (two at once).
BENCH_DB = os.environ.get("LEADPORTAL_BENCH_DB", "") or "leadportal_bench"
# Databases the bench must never drop or write to (the project's own and pytest's).
PROTECTED_PREFIXES = ("test_",)
PROTECTED_NAMES = {"leadportal", "postgres", "template0", "template1"}

ACTIVITY_COLUMNS = (
    "lead_id",
    "type",
    "occurred_at",
    "properties",
    "source",
    "external_id",
    "created_by_id",
    "created_at",
)


class DatabaseUnavailable(RuntimeError):
    pass


def conninfo(dbname: str) -> str:
    return f"host={HOST} port={PORT} user={USER} dbname={dbname} connect_timeout=3"


def database_url(dbname: str = BENCH_DB) -> str:
    return f"postgres://{USER}@{HOST}:{PORT}/{dbname}"


def _check_name(dbname: str) -> None:
    if dbname in PROTECTED_NAMES or dbname.startswith(PROTECTED_PREFIXES):
        raise ValueError(f"refusing to touch database {dbname!r}")


def server_version() -> str:
    """The server's version string; DatabaseUnavailable when PostgreSQL does not answer."""
    try:
        with psycopg.connect(conninfo("postgres")) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"PostgreSQL at {HOST}:{PORT} does not answer: {exc}".strip()) from exc


def recreate_database(dbname: str = BENCH_DB) -> None:
    """Drop (terminating its sessions) and create `dbname`, connected to the `postgres` database."""
    _check_name(dbname)
    with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def row_counts(dbname: str = BENCH_DB) -> dict[str, int]:
    with psycopg.connect(conninfo(dbname)) as conn:
        leads = conn.execute("SELECT count(*) FROM leads_lead").fetchone()[0]
        activities = conn.execute("SELECT count(*) FROM leads_activity").fetchone()[0]
    return {"leads": leads, "activities": activities}


def lead_emails(prefix: str, limit: int, dbname: str = BENCH_DB) -> list[tuple[int, str]]:
    """(id, email) of up to `limit` leads whose e-mail starts with `prefix`, oldest first."""
    with psycopg.connect(conninfo(dbname)) as conn:
        rows = conn.execute(
            "SELECT id, email FROM leads_lead WHERE email LIKE %s ORDER BY id LIMIT %s",
            (prefix.replace("_", r"\_") + "%", limit),
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def active_scoring_models(dbname: str = BENCH_DB) -> int | None:
    """How many scoring models are active (with one, every capture rescores in the request, since
    Celery is eager); None when the scoring app has no such table yet."""
    try:
        with psycopg.connect(conninfo(dbname)) as conn:
            return conn.execute("SELECT count(*) FROM scoring_scoringmodel WHERE status = 'active'").fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return None


def user_id(username: str, dbname: str = BENCH_DB) -> int:
    with psycopg.connect(conninfo(dbname)) as conn:
        return conn.execute("SELECT id FROM leads_user WHERE username = %s", (username,)).fetchone()[0]


def activity_rows(
    *,
    count: int,
    lead_ids: Sequence[int],
    occurred: Sequence[datetime],
    source: str,
    id_prefix: str,
    created_by: int,
    now: datetime,
) -> list[tuple[Any, ...]]:
    """Rows shaped like what the events API stores for a page_view event."""
    return [
        (
            lead_ids[i % len(lead_ids)],
            "page_view",
            occurred[i % len(occurred)],
            Jsonb({"url": "/pricing"}),
            source,
            f"{id_prefix}-{i}",
            created_by,
            now,
        )
        for i in range(count)
    ]


def insert_executemany(rows: list[tuple[Any, ...]], batch_size: int, dbname: str = BENCH_DB) -> float:
    """Insert `rows` with cursor.executemany, one transaction per batch; return elapsed seconds."""
    statement = sql.SQL("INSERT INTO leads_activity ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, ACTIVITY_COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(ACTIVITY_COLUMNS)),
    )
    with psycopg.connect(conninfo(dbname)) as conn:
        start = time.perf_counter()
        for offset in range(0, len(rows), batch_size):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(statement, rows[offset : offset + batch_size])
        return time.perf_counter() - start


def insert_copy(rows: list[tuple[Any, ...]], batch_size: int, dbname: str = BENCH_DB) -> float:
    """Insert `rows` with COPY FROM STDIN, one transaction per batch; return elapsed seconds."""
    statement = sql.SQL("COPY leads_activity ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, ACTIVITY_COLUMNS))
    )
    with psycopg.connect(conninfo(dbname)) as conn:
        start = time.perf_counter()
        for offset in range(0, len(rows), batch_size):
            with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows[offset : offset + batch_size]:
                    copy.write_row(row)
        return time.perf_counter() - start


def server_version_or_explain() -> str | None:
    """PostgreSQL's version, or None after telling the user on stderr what the bench needs."""
    try:
        return server_version()
    except DatabaseUnavailable as exc:
        print(f"bench: {exc}", file=sys.stderr)
        print(
            f"bench: needs PostgreSQL at {HOST}:{PORT} (user {USER}, trust auth); start it and run `make bench` again.",
            file=sys.stderr,
        )
        return None
