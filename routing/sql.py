"""The routing app's speed layer: every raw SQL statement of the app, each beside its portable twin.

A function here is the one place that chooses between the PostgreSQL statement and the portable
(ORM, SQLite-safe) way of doing the same thing; callers never look at `connection.vendor`.
`routing/tests/test_sql.py` runs both on PostgreSQL over the same data and requires the same result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Count, Field, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, User

from .models import Assignment, RepProfile, RoutingRule, RuleCondition


def postgresql() -> bool:
    return connection.vendor == "postgresql"


# --- the reps' state ---------------------------------------------------------------------------------


class RepRow(NamedTuple):
    """What routing reads of a rep: the user, the profile's routing fields and the open leads."""

    user_id: int
    first_name: str
    last_name: str
    username: str
    user_active: bool
    active: bool
    away_until: datetime | None
    capacity: int
    weight: int
    seniority: int
    territories: list[str]
    languages: list[str]
    products: list[str]
    industries: list[str]
    min_company_size: int | None
    max_company_size: int | None
    open_leads: int


# Where each field but open_leads is read from: the ORM path from RepProfile, and the column of the
# raw statement (p: the profile, u: the user). The rest are the profile's own fields, by their names.
_USER_SOURCES: dict[str, tuple[str, str]] = {
    "user_id": ("user_id", "p.user_id"),
    "first_name": ("user__first_name", "u.first_name"),
    "last_name": ("user__last_name", "u.last_name"),
    "username": ("user__username", "u.username"),
    "user_active": ("user__is_active", "u.is_active"),
}
REP_PROFILE_FIELDS: tuple[str, ...] = tuple(n for n in RepRow._fields if n not in _USER_SOURCES and n != "open_leads")
_REP_SOURCES = {**_USER_SOURCES, **{name: (name, f"p.{name}") for name in REP_PROFILE_FIELDS}}
_REP_JSON_AT = tuple(
    i
    for i, name in enumerate(RepRow._fields)
    if name in REP_PROFILE_FIELDS and RepProfile._meta.get_field(name).get_internal_type() == "JSONField"
)
assert tuple(_REP_SOURCES) == RepRow._fields[:-1]

_REP_SQL = f"""
    SELECT {", ".join(column for _, column in _REP_SOURCES.values())},
           (SELECT COUNT(*) FROM {Lead._meta.db_table} l WHERE l.owner_id = p.user_id AND l.stage = ANY(%s))
    FROM {RepProfile._meta.db_table} p JOIN {User._meta.db_table} u ON u.id = p.user_id
    WHERE p.user_id = ANY(%s)
"""  # noqa: S608 - our own table and column names; the values are parameters


def open_leads_count(column: str) -> Coalesce:
    """Open leads (MQL, SAL, SQL) of the candidate in the outer row, as a correlated subquery:
    `owner_id` for a RepProfile row, `partner_id` for a PartnerOrganization row."""
    return Coalesce(
        Subquery(
            Lead.objects.filter(**{column: OuterRef("pk" if column == "partner_id" else "user_id")})
            .filter(stage__in=OPEN_STAGES)
            .order_by()
            .values(column)
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def rep_rows(rep_ids: Sequence[int]) -> list[RepRow]:
    """The RepRow of every one of these reps that has a profile (in no particular order).

    PostgreSQL: one raw statement of a fixed shape with two array parameters — building the ORM
    query (a correlated subquery) cost more than running it.
    Portable: the ORM query, the open leads as a correlated subquery."""
    if not postgresql():
        rows = (
            RepProfile.objects.filter(user_id__in=list(rep_ids))
            .order_by()
            .annotate(open_leads=open_leads_count("owner_id"))
            .values_list(*(path for path, _ in _REP_SOURCES.values()), "open_leads")
        )
        return [RepRow(*row) for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(_REP_SQL, [[s.value for s in OPEN_STAGES], list(rep_ids)])
        rows = cursor.fetchall()
    result = []
    for row in rows:
        row = list(row)
        for i in _REP_JSON_AT:
            if isinstance(row[i], str):  # Django reads jsonb as text and decodes it in the field
                row[i] = json.loads(row[i])
        result.append(RepRow(*row))
    return result


# --- rules, assignments, the leads' hand-over fields --------------------------------------------------


def rules_fingerprint() -> tuple:
    """A value that changes whenever rules, their conditions or partners, or team membership change
    (through the admin or services): one cheap query instead of loading 500 rules for every lead.
    One statement, the same on PostgreSQL and SQLite (counts and maxima only)."""
    tables = {
        "rule": RoutingRule._meta.db_table,
        "condition": RuleCondition._meta.db_table,
        "partners": RoutingRule.partners.through._meta.db_table,
        "profile": RepProfile._meta.db_table,
    }
    sql = (  # noqa: S608 - our own table names, no input
        "SELECT (SELECT COUNT(*) FROM {rule}), (SELECT MAX(updated_at) FROM {rule}),"
        " (SELECT COUNT(*) FROM {condition}), (SELECT MAX(id) FROM {condition}),"
        " (SELECT COUNT(*) FROM {partners}), (SELECT MAX(id) FROM {partners}),"
        " (SELECT COUNT(*) FROM {profile}), (SELECT MAX(updated_at) FROM {profile})"
    ).format(**tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def open_assignment_id(lead_id: int) -> int | None:
    """The id of the lead's active or pooled assignment, if it has one. Every routing task of a
    batch's leads asks this: one plain statement, the same on PostgreSQL and SQLite."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Assignment._meta.db_table} WHERE lead_id = %s AND status IN (%s, %s) LIMIT 1",  # noqa: S608
            [lead_id, Assignment.Status.ACTIVE, Assignment.Status.POOLED],
        )
        return (cursor.fetchone() or [None])[0]


_ARRAY_TYPES = {"ForeignKey": "bigint", "BooleanField": "boolean", "DateTimeField": "timestamptz"}


def leads_update(leads: Sequence[Lead], field_names: Sequence[str], now: datetime) -> None:
    """Write these fields of these leads (as set on the instances) and `updated_at = now`.

    PostgreSQL: one UPDATE … FROM unnest(arrays) — bulk_update's CASE WHEN per field and row costs
    more to build than the rows cost to write (the fields may be foreign keys, booleans, instants).
    Portable: bulk_update."""
    if not leads:
        return
    for lead in leads:
        lead.updated_at = now  # what auto_now does on save(); a bulk update does not
    if not postgresql():
        Lead.objects.bulk_update(leads, [*field_names, "updated_at"])
        return
    fields: list[tuple[str, str, str]] = []  # (column, attribute, array type)
    for name in field_names:
        field = Lead._meta.get_field(name)
        if not isinstance(field, Field) or field.column is None:
            raise ValueError(f"Lead.{name} is not a column")
        fields.append((field.column, field.attname, _ARRAY_TYPES[field.get_internal_type()]))
    arrays = ", ".join(f"%s::{array_type}[]" for _, _, array_type in fields)
    sets = ", ".join(f"{column} = v.{column}" for column, _, _ in fields)
    columns = ", ".join(column for column, _, _ in fields)
    # Column and table names come from the model, values are parameters.
    sql = (
        f"UPDATE {Lead._meta.db_table} AS l SET {sets}, updated_at = %s "  # noqa: S608
        f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {columns}) WHERE l.id = v.id"
    )
    values = ([getattr(lead, attribute) for lead in leads] for _, attribute, _ in fields)
    params: list[Any] = [now, [lead.pk for lead in leads], *values]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
