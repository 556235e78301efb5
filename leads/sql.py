"""The leads app's speed layer: every raw SQL statement of the app, each beside its portable twin.

A function here is the one place that chooses between the PostgreSQL statement and the portable
(ORM, SQLite-safe) way of doing the same thing; callers never look at `connection.vendor`.
`leads/tests/test_sql.py` runs both on PostgreSQL over the same data and requires the same result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from .models import Activity, Lead

# (lead_id, type, occurred_at, properties, source, external_id)
ActivityRow = tuple[int, str, datetime, dict[str, Any], str, str]


def postgresql() -> bool:
    return connection.vendor == "postgresql"


def activities_insert(rows: Sequence[ActivityRow], *, actor_id: int | None, now: datetime) -> list[int]:
    """Insert these activity rows, skipping those whose (source, external_id) is already stored;
    return the lead id of every row stored (in no particular order).

    PostgreSQL: one INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING — the
    database says exactly which rows were new, even against a concurrent batch, and a batch of
    1,000 costs a few milliseconds (Django's bulk_create spends ~80 ms preparing 8,000 values).
    Portable: look up the known external ids, bulk_create the rest (ignore_conflicts keeps one row
    if a concurrent batch stored the same id meanwhile)."""
    if not rows:
        return []
    if postgresql():
        return _activities_insert_pg(rows, actor_id, now)
    return _activities_insert_portable(rows, actor_id)


def _activities_insert_pg(rows: Sequence[ActivityRow], actor_id: int | None, now: datetime) -> list[int]:
    lead_ids, types, times, props, sources, external_ids = (list(column) for column in zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Activity._meta.db_table}
                (lead_id, type, occurred_at, properties, source, external_id, created_by_id, created_at)
            SELECT v.lead_id, v.type, v.occurred_at, v.properties::jsonb, v.source, v.external_id, %s, %s
            FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[], %s::text[], %s::varchar[], %s::varchar[])
                AS v(lead_id, type, occurred_at, properties, source, external_id)
            ON CONFLICT DO NOTHING
            RETURNING lead_id
            """,  # noqa: S608 - the table name is ours; every value is a parameter
            [actor_id, now, lead_ids, types, times, [json.dumps(p) for p in props], sources, external_ids],
        )
        return [lead_id for (lead_id,) in cursor.fetchall()]


def _activities_insert_portable(rows: Sequence[ActivityRow], actor_id: int | None) -> list[int]:
    known = _known_external_ids(rows)
    fresh = [r for r in rows if not r[5] or (r[4], r[5]) not in known]
    Activity.objects.bulk_create(
        [
            Activity(
                lead_id=r[0],
                type=r[1],
                occurred_at=r[2],
                properties=r[3],
                source=r[4],
                external_id=r[5],
                created_by_id=actor_id,
            )
            for r in fresh
        ],
        batch_size=500,
        ignore_conflicts=True,  # a concurrent batch with the same ids: the constraint keeps one
    )
    return [r[0] for r in fresh]


def _known_external_ids(rows: Sequence[ActivityRow]) -> set[tuple[str, str]]:
    by_source: dict[str, set[str]] = {}
    for row in rows:
        if row[5]:
            by_source.setdefault(row[4], set()).add(row[5])
    known: set[tuple[str, str]] = set()
    for source, ids in by_source.items():
        existing = Activity.objects.filter(source=source, external_id__in=ids).values_list("external_id", flat=True)
        known.update((source, external_id) for external_id in existing if external_id is not None)
    return known


def health_probe(*, lock_timeout_ms: int, statement_timeout_ms: int) -> list[tuple]:
    """Read one lead as a real request would, within these bounds, and roll back; raise if the
    database does not answer in time.

    PostgreSQL: SET LOCAL lock_timeout and statement_timeout first (they end with this transaction,
    or with its savepoint when called inside one: the connection's own timeouts are untouched).
    Portable: SQLite has neither setting (its busy timeout is the connection's), only the read."""
    with transaction.atomic(), connection.cursor() as cursor:
        if postgresql():
            cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            cursor.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
        cursor.execute(f"SELECT id FROM {Lead._meta.db_table} LIMIT 1")  # noqa: S608 - our own table
        rows = cursor.fetchall()
        transaction.set_rollback(True)
    return rows
