"""leads/sql.py: each PostgreSQL statement gives what its portable twin gives, on the same data."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from leads import sql
from leads.models import Activity
from leads.tests.factories import ActivityFactory, LeadFactory, UserFactory

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db
def test_activities_insert_stores_and_reports_the_same_rows_both_ways(sql_twins):
    actor = UserFactory(username="importer")
    first, second = LeadFactory(), LeadFactory()
    ActivityFactory(lead=first, source="crm", external_id="known-1", type="note", properties={})
    rows = [
        (first.pk, "page_view", AT, {"url": "/pricing", "n": 2}, "web", "w-1"),
        (first.pk, "note", AT, {}, "crm", "known-1"),  # stored already: skipped
        (second.pk, "download", AT, {"asset": "guide.pdf"}, "web", "w-2"),
        (second.pk, "call", AT, {}, "", None),  # no id of its own: always stored
    ]

    def stored():
        return sorted(
            Activity.objects.exclude(external_id="known-1").values_list(
                "lead_id", "type", "occurred_at", "properties", "source", "external_id", "created_by_id"
            ),
            key=repr,
        )

    pg, portable = sql_twins(sql, lambda: sorted(sql.activities_insert(rows, actor_id=actor.pk, now=AT)), stored)

    assert pg[:2] == portable[:2]
    assert pg[0] == sorted([first.pk, second.pk, second.pk])
    assert pg[1] == sorted(
        [
            (first.pk, "page_view", AT, {"url": "/pricing", "n": 2}, "web", "w-1", actor.pk),
            (second.pk, "download", AT, {"asset": "guide.pdf"}, "web", "w-2", actor.pk),
            (second.pk, "call", AT, {}, "", None, actor.pk),
        ],
        key=repr,
    )
    assert ["ON CONFLICT DO NOTHING" in q for q in pg[2]] == [True]  # one statement, the fast one
    assert len(portable[2]) == 3 and not any("unnest" in q for q in portable[2])  # known ids by source, insert
    assert Activity.objects.count() == 1  # both runs were rolled back


@pytest.mark.postgres
@pytest.mark.django_db
def test_health_probe_reads_the_same_lead_both_ways_and_leaves_the_timeouts(sql_twins):
    lead = LeadFactory()

    def lock_timeout():
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            return cursor.fetchone()[0]

    before = lock_timeout()

    def probe():
        return sql.health_probe(lock_timeout_ms=1000, statement_timeout_ms=2000)

    pg, portable = sql_twins(sql, probe)

    assert pg[0] == portable[0] == [(lead.pk,)]
    assert pg[2][:2] == ["SET LOCAL lock_timeout = 1000", "SET LOCAL statement_timeout = 2000"]
    assert not any(q.startswith("SET") for q in portable[2])
    assert before != "1s" and lock_timeout() == before  # SET LOCAL ended with the probe's savepoint


@pytest.mark.postgres
@pytest.mark.django_db
def test_leads_insert_stores_the_same_leads_both_ways(sql_twins):
    from django.db import IntegrityError, transaction

    from leads.models import Lead

    LeadFactory(email="taken@acme.example")

    def act():
        made = [
            Lead(
                email="a@acme.example",
                company_domain="acme.example",
                first_name="Ä",
                country="DE",
                attributes={"k": [1]},
            ),
            Lead(email="b@acme.example", company_domain="acme.example", source="import", consent_status="pending"),
        ]
        sql.leads_insert(made, now=AT)
        assert all(lead.pk for lead in made)
        return [lead.email for lead in made]

    def stored():
        fields = [f.attname for f in Lead._meta.concrete_fields if f.name != "id"]
        return [
            tuple(str(v) for v in row)
            for row in Lead.objects.exclude(email="taken@acme.example").order_by("email").values_list(*fields)
        ]

    pg, portable = sql_twins(sql, act, stored)
    assert pg[:2] == portable[:2]
    assert len(pg[1]) == 2 and ("Ä" in pg[1][0]) and str(AT) in pg[1][0]
    # An e-mail stored already is an IntegrityError either way (the batch is redone by its caller).
    for _ in range(2):
        with pytest.raises(IntegrityError), transaction.atomic():
            sql.leads_insert([Lead(email="taken@acme.example")], now=AT)


@pytest.mark.postgres
@pytest.mark.django_db
def test_leads_update_writes_the_same_values_both_ways(sql_twins):
    from decimal import Decimal

    from leads.models import Lead

    first = LeadFactory(email="one@acme.example", attributes={"a": 1})
    second = LeadFactory(email="two@acme.example", country="AT")
    untouched = LeadFactory(email="three@acme.example", first_name="Same")
    fields = ["first_name", "country", "attributes", "annual_revenue", "latest_touch_at", "updated_at"]

    def act():
        one, two = Lead.objects.get(pk=first.pk), Lead.objects.get(pk=second.pk)
        one.first_name, one.country, one.attributes, one.annual_revenue = (
            "Ünal",
            "CH",
            {"a": 2, "b": [1]},
            Decimal("12.50"),
        )
        two.first_name, two.latest_touch_at, two.updated_at = "Two", AT, AT
        sql.leads_update([one, two], fields)

    def stored():
        return [tuple(str(v) for v in row) for row in Lead.objects.order_by("email").values_list("email", *fields)]

    pg, portable = sql_twins(sql, act, stored)
    assert pg[1] == portable[1]
    by_email = {row[0]: row for row in pg[1]}
    assert by_email["one@acme.example"][1:5] == ("Ünal", "CH", "{'a': 2, 'b': [1]}", "12.50")
    assert by_email["two@acme.example"][5] == str(AT)
    assert by_email["three@acme.example"][1] == untouched.first_name
