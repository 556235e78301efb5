"""The scoring app's speed layer: every raw SQL statement of the app, each beside its portable twin.

A function here is the one place that chooses between the PostgreSQL statement and the portable
(ORM, SQLite-safe) way of doing the same thing; callers never look at `connection.vendor`.
`scoring/tests/test_sql.py` runs both on PostgreSQL over the same data and requires the same result.
The rules themselves are compiled into ORM expressions in `bulk.py`; this module only decides how
those queries and the writes around them reach the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from leads.models import Activity, Lead

from . import caches, engine
from .models import PendingRescore, ScoringModel

if TYPE_CHECKING:
    from .bulk import LeadScore


def postgresql() -> bool:
    return connection.vendor == "postgresql"


# --- computing ---------------------------------------------------------------------------------------


def scores_compute_for(model: engine.Model, now: datetime, lead_ids: list[int]) -> list[LeadScore]:
    """`bulk.compute` for a list of leads.

    PostgreSQL: the batch's queries compiled to SQL once per model (cached in
    `scoring.caches.compiled_sql`) with markers where the lead ids and the instant go, then run with
    one array parameter. Building these queries through the ORM costs far more than running them for
    a handful of leads (≈ 70 ms against a few ms), and workers rescore a handful at a time.
    Portable: the same ORM queries, built for this call with `pk IN (…)`."""
    from . import bulk

    if not postgresql():
        return bulk.compute_queries(
            model, now, Lead.objects.filter(pk__in=lead_ids), Activity.objects.filter(lead_id__in=lead_ids)
        )
    entry = caches.compiled_sql.get(model.version)
    if entry is None or entry[0] is not model:
        entry = (model, _compile(model))
        caches.compiled_sql.set(model.version, entry)
    plan = entry[1]
    summed = plan["summed"]
    return bulk.combine(
        model,
        _run(plan["fit"], lead_ids, now),
        (summed[0], None) if summed else None,
        _run(summed[1], lead_ids, now) if summed else [],
        [(rule, _run(statement, lead_ids, now)) for rule, statement in plan["latest"]],
    )


_IDS_MARK: list[int] = []
_NOW_MARK = datetime(2000, 1, 1, tzinfo=UTC)


def _compile(model: engine.Model) -> dict:
    from . import bulk

    ids = RawSQL("SELECT unnest(%s::bigint[])", (_IDS_MARK,))
    fit, summed, latest = bulk.queries(
        model, Lead.objects.filter(pk__in=ids), Activity.objects.filter(lead_id__in=ids), _NOW_MARK
    )
    return {
        "fit": fit.query.sql_with_params(),
        "summed": (summed[0], summed[1].query.sql_with_params()) if summed else None,
        "latest": [(rule, query.query.sql_with_params()) for rule, query in latest],
    }


def _run(statement: tuple[str, tuple], lead_ids: list[int], now: datetime) -> list[tuple]:
    sql, params = statement
    bound = [lead_ids if p is _IDS_MARK else now if p is _NOW_MARK else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        return cursor.fetchall()


def snapshot_begin() -> None:
    """Make the transaction just begun a consistent snapshot for the queries of one computation.

    PostgreSQL: a read-only REPEATABLE READ transaction, which never waits and never fails on a
    conflict (under READ COMMITTED each statement would see its own committed state).
    Portable: nothing to do, SQLite's transactions are serialisable anyway."""
    if postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


# --- storing -----------------------------------------------------------------------------------------

LOCK_STATE_FIELDS = ("score_rev", "scored_rev", "scoring_version", "scored_at", "stage")


def lock_state(lead_ids: Sequence[int]) -> dict[int, tuple]:
    """Lock these leads (id order, FOR NO KEY UPDATE, as `leads.services.lock_leads`) and read what
    storing a score depends on: {id: (score_rev, scored_rev, scoring_version, scored_at, stage)}.

    PostgreSQL: one statement with one array parameter (a batch is 20,000 leads: a list of that
    many placeholders costs more to build and send than the lock and the read).
    Portable: `lock_leads`, then the read."""
    if postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {', '.join(LOCK_STATE_FIELDS)} FROM {Lead._meta.db_table} "  # noqa: S608 - ours
                "WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                [list(lead_ids)],
            )
            return {row[0]: row[1:] for row in cursor.fetchall()}
    from leads.services import lock_leads

    lock_leads(lead_ids)
    rows = Lead.objects.filter(pk__in=list(lead_ids)).values_list("pk", *LOCK_STATE_FIELDS)
    return {row[0]: row[1:] for row in rows}


def pending_add(ids: list[int]) -> list[int]:
    """Insert pending rows for these leads, release the claims of rows a task is working on; return
    the ids that need a task (new rows and released claims; a row waiting unclaimed has one), sorted.

    PostgreSQL: one INSERT … ON CONFLICT DO UPDATE … WHERE claimed RETURNING.
    Portable: read the existing rows, release the claimed ones, bulk_create the new ones."""
    if not ids:
        return []
    if postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {PendingRescore._meta.db_table} AS p (lead_id, requested_at, claimed_until) "
                "SELECT unnest(%s::bigint[]), now(), NULL "
                "ON CONFLICT (lead_id) DO UPDATE SET claimed_until = NULL, requested_at = now() "
                "WHERE p.claimed_until IS NOT NULL RETURNING p.lead_id",
                [ids],
            )
            return sorted(lead_id for (lead_id,) in cursor.fetchall())
    existing = dict(PendingRescore.objects.filter(lead_id__in=ids).values_list("lead_id", "claimed_until"))
    released = [i for i, claimed in existing.items() if claimed is not None]
    PendingRescore.objects.filter(lead_id__in=released).update(claimed_until=None, requested_at=timezone.now())
    fresh = [i for i in ids if i not in existing]
    PendingRescore.objects.bulk_create([PendingRescore(lead_id=i) for i in fresh], ignore_conflicts=True)
    return sorted([*fresh, *released])


def pending_delete(lead_ids: Sequence[int]) -> None:
    """Delete these leads' pending rescoring rows.

    PostgreSQL: one DELETE with one array parameter. Portable: the ORM's `lead_id IN (…)`."""
    if not lead_ids:
        return
    if postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {PendingRescore._meta.db_table} WHERE lead_id = ANY(%s)",  # noqa: S608 - ours
                [list(lead_ids)],
            )
        return
    PendingRescore.objects.filter(lead_id__in=list(lead_ids)).delete()


def model_still_active(version: int) -> bool:
    """In a write transaction: whether this model is still the active one.

    PostgreSQL: the row is share-locked (FOR SHARE) until the commit, so an activation (which locks
    it for update) waits for our write and then supersedes it with its full run, or our write sees
    it archived. Portable: the same read without the lock (SQLite serialises writers anyway)."""
    sql = f"SELECT status FROM {ScoringModel._meta.db_table} WHERE id = %s"  # noqa: S608 - ours
    if postgresql():
        sql += " FOR SHARE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [version])
        row = cursor.fetchone()
    return row is not None and row[0] == ScoringModel.Status.ACTIVE


def scores_write(scores: Sequence[LeadScore], version: int, now: datetime) -> int:
    """Store the scores; rows whose values did not change are left alone. Returns rows written.
    The caller decides which scores may be written (scoring.services.scores_apply).

    PostgreSQL: UPDATE … FROM unnest(arrays) WHERE … IS DISTINCT FROM (Django's bulk_update builds
    a CASE per row, which is quadratic at these batch sizes). Portable: one UPDATE per row
    (executemany) with the same "changed" condition."""
    if not scores:
        return 0
    table = Lead._meta.db_table
    with connection.cursor() as cursor:
        if postgresql():
            cursor.execute(
                f"""
                UPDATE {table} AS l
                SET fit_score = v.fit, engagement_score = v.eng, score = v.total, grade = v.grade,
                    scored_at = %s, scoring_version = %s, scored_rev = v.rev
                FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::varchar[], %s::bigint[])
                     AS v(id, fit, eng, total, grade, rev)
                WHERE l.id = v.id
                  AND (l.fit_score, l.engagement_score, l.grade, l.scoring_version, l.scored_rev)
                      IS DISTINCT FROM (v.fit, v.eng, v.grade, %s, v.rev)
                """,  # noqa: S608 - the table name is ours; every value is a parameter
                [
                    now,
                    version,
                    [s.lead_id for s in scores],
                    [s.fit for s in scores],
                    [s.engagement for s in scores],
                    [s.total for s in scores],
                    [s.grade for s in scores],
                    [s.rev for s in scores],
                    version,
                ],
            )
            return cursor.rowcount
        cursor.executemany(
            f"""
            UPDATE {table} SET fit_score = %s, engagement_score = %s, score = %s, grade = %s,
                scored_at = %s, scoring_version = %s, scored_rev = %s
            WHERE id = %s AND NOT (fit_score = %s AND engagement_score = %s AND grade = %s
                                   AND scoring_version IS NOT NULL AND scoring_version = %s AND scored_rev = %s)
            """,  # noqa: S608 - the table name is ours; every value is a parameter
            [
                (
                    *(s.fit, s.engagement, s.total, s.grade, now, version, s.rev, s.lead_id),
                    *(s.fit, s.engagement, s.grade, version, s.rev),
                )
                for s in scores
            ],
        )
        return cursor.rowcount
