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

from .models import Activity, Lead, LeadTombstone

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


# The changes feed (leads.changes): the triggers that stamp every lead write with its change key, and
# the read that pages through the keys. On PostgreSQL a BEFORE trigger gives the row
# (change_xid = the writing transaction's id, change_seq = nextval); an activity stored marks its
# lead (change_seq = -1), which the lead's trigger turns into a fresh key. On SQLite, one writer at a
# time commits in the order it took its numbers, so a counter row is the whole mechanism (xid 0).
# SQLite's ALTER TABLE rebuilds a table without its triggers, so they are installed again after every
# migrate (leads.apps) — CREATE TRIGGER IF NOT EXISTS makes that a no-op when they are there.

_PG_TRIGGERS = """
CREATE SEQUENCE IF NOT EXISTS leads_change_seq;
CREATE OR REPLACE FUNCTION leads_change_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.change_seq IS DISTINCT FROM -1 THEN
        NEW.change_seq := OLD.change_seq;
        NEW.change_xid := OLD.change_xid;
        IF NEW IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;  -- nothing a reader could see changed
        END IF;
    END IF;
    NEW.change_seq := nextval('leads_change_seq');
    NEW.change_xid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION leads_activity_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads_lead SET change_seq = -1 WHERE id IN (SELECT DISTINCT lead_id FROM stored);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS leads_lead_change ON leads_lead;
CREATE TRIGGER leads_lead_change BEFORE INSERT OR UPDATE ON leads_lead
    FOR EACH ROW EXECUTE FUNCTION leads_change_stamp();
DROP TRIGGER IF EXISTS leads_tombstone_change ON leads_leadtombstone;
CREATE TRIGGER leads_tombstone_change BEFORE INSERT ON leads_leadtombstone
    FOR EACH ROW EXECUTE FUNCTION leads_change_stamp();
DROP TRIGGER IF EXISTS leads_activity_change ON leads_activity;
CREATE TRIGGER leads_activity_change AFTER INSERT ON leads_activity
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION leads_activity_touch();
"""

_SQLITE_NEXT = (
    "UPDATE leads_change_counter SET value = value + 1;"
    " UPDATE {table} SET change_seq = (SELECT value FROM leads_change_counter), change_xid = 0"
)
_SQLITE_TRIGGERS = [
    "CREATE TABLE IF NOT EXISTS leads_change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO leads_change_counter (id, value)"
    " SELECT 1, MAX(COALESCE((SELECT MAX(change_seq) FROM leads_lead), 0),"
    " COALESCE((SELECT MAX(change_seq) FROM leads_leadtombstone), 0))",
    # Recursive triggers are off in SQLite, so the inner UPDATE does not fire these again.
    "CREATE TRIGGER IF NOT EXISTS leads_lead_change_insert AFTER INSERT ON leads_lead BEGIN "
    + _SQLITE_NEXT.format(table="leads_lead")
    + " WHERE id = NEW.id; END",
    "CREATE TRIGGER IF NOT EXISTS leads_lead_change_update AFTER UPDATE ON leads_lead BEGIN "
    + _SQLITE_NEXT.format(table="leads_lead")
    + " WHERE id = NEW.id; END",
    "CREATE TRIGGER IF NOT EXISTS leads_tombstone_change AFTER INSERT ON leads_leadtombstone BEGIN "
    + _SQLITE_NEXT.format(table="leads_leadtombstone")
    + " WHERE id = NEW.id; END",
    "CREATE TRIGGER IF NOT EXISTS leads_activity_change AFTER INSERT ON leads_activity BEGIN "
    + _SQLITE_NEXT.format(table="leads_lead")
    + " WHERE id = NEW.lead_id; END",
]


def change_triggers_install(using: str = "default") -> None:
    """Install (or re-install, idempotently) the triggers that keep every lead's change key."""
    from django.db import connections

    conn = connections[using]
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(_PG_TRIGGERS)
        elif conn.vendor == "sqlite":
            for statement in _SQLITE_TRIGGERS:
                cursor.execute(statement)


# (change_xid, change_seq, lead id, erased)
ChangeRow = tuple[int, int, int, bool]


def changes_after(xid: int, seq: int, *, limit: int) -> list[ChangeRow]:
    """The next `limit` changes after the key (xid, seq), in key order: leads at their latest change,
    tombstones of erased leads.

    PostgreSQL: only changes of transactions older than the oldest one still running (the snapshot's
    xmin) — every such transaction has ended, so no change can still appear below that horizon, and a
    reader that moves its key only through what lies below it never steps over a change.
    Portable (SQLite): one writer at a time, so a committed key is final the moment it is seen."""
    horizon = "AND change_xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint" if postgresql() else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT change_xid, change_seq, id, 0 FROM {Lead._meta.db_table}
             WHERE (change_xid, change_seq) > (%s, %s) {horizon}
            UNION ALL
            SELECT change_xid, change_seq, lead_id, 1 FROM {LeadTombstone._meta.db_table}
             WHERE (change_xid, change_seq) > (%s, %s) {horizon}
            ORDER BY 1, 2
            LIMIT %s
            """,  # noqa: S608 - the table names and the horizon are ours; every value is a parameter
            [xid, seq, xid, seq, limit],
        )
        return [(x, s, pk, bool(erased)) for x, s, pk, erased in cursor.fetchall()]
