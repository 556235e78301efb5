"""lead_capture_many applies lead_capture's rules, batch-wise: the same input leaves the same lead."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from leads import sql
from leads.models import Activity, ActivityType, ConsentStatus, Lead
from leads.services import lead_capture, lead_capture_many
from leads.tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

COMPARED = (
    "first_name",
    "last_name",
    "phone",
    "company",
    "company_domain",
    "job_title",
    "country",
    "source",
    "campaign",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "latest_source",
    "latest_campaign",
    "latest_utm_source",
    "attributes",
    "consent_status",
    "stage",
    "score_rev",
)

CAPTURES = [
    {"email": "{}", "first_name": "Ada", "company": "Acme", "attributes": {"a": 1}},
    {"email": "{}", "last_name": "Lovelace", "source": "fair", "campaign": "expo", "attributes": {"b": 2}},
    {"email": "{}", "first_name": "", "phone": "+49 1", "utm_source": "news", "utm_campaign": "dec"},
    {"email": "{}", "consent_status": "pending"},
    {"email": "{}", "consent_status": "withdrawn", "job_title": "CTO"},
    {"email": "{}", "consent_status": "pending", "country": "AT"},
]


def state(email: str) -> tuple:
    lead = Lead.objects.get(email=email)
    activities = [
        (a.source, dict(a.properties.items()))
        for a in Activity.objects.filter(lead=lead, type=ActivityType.CAPTURED).order_by("pk")
    ]
    return tuple(str(getattr(lead, f)) for f in COMPARED), activities


@pytest.mark.parametrize("existing", [False, True])
def test_both_give_the_same_lead_for_the_same_captures(existing):
    one, many = "one@acme.example", "many@acme.example"
    if existing:  # a lead an event made, without attribution, and one with a first touch
        for email in (one, many):
            LeadFactory(email=email, first_name="Old", source="", campaign="", attributes={"a": 0, "z": 9})
    for data in CAPTURES:
        lead_capture(data={**data, "email": data["email"].format(one.upper())}, source="import")
    # In one batch, in order (a batch's rows of one e-mail apply as consecutive captures), and in two.
    results = lead_capture_many(rows=[{**d, "email": d["email"].format(many)} for d in CAPTURES[:4]], source="import")
    results += lead_capture_many(rows=[{**d, "email": d["email"].format(many)} for d in CAPTURES[4:]], source="import")

    lead_one, activities_one = state(one)
    lead_many, activities_many = state(many)
    assert lead_one[:-1] == lead_many[:-1]
    assert activities_one == activities_many
    assert [created for _id, created in results] == [not existing, False, False, False, False, False]
    assert Lead.objects.get(email=many).consent_status == ConsentStatus.WITHDRAWN
    # score_rev: one raise per call (a batch raises it once for all its rows).
    assert Lead.objects.get(email=many).score_rev == 2
    assert Lead.objects.get(email=one).score_rev == len(CAPTURES)


def test_a_batch_of_new_and_existing_leads_in_few_statements(django_assert_max_num_queries):
    LeadFactory.create_batch(20)
    rows = [{"email": lead.email, "job_title": "CEO"} for lead in Lead.objects.all()]
    rows += [{"email": f"new{n}@acme.example", "company": "New"} for n in range(80)]
    # 14 for the batch, whatever its size; +2 on a cold cache: the webhook subscriptions, read once per process.
    with django_assert_max_num_queries(16):
        results = lead_capture_many(rows=rows, source="import")
    assert sum(created for _id, created in results) == 80
    assert Lead.objects.filter(job_title="CEO").count() == 20
    assert Activity.objects.filter(type=ActivityType.CAPTURED, source="import").count() == 100


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_capture_of_an_email_in_the_batch_makes_one_lead(monkeypatch):
    """The API captures the batch's new e-mail and commits after the batch read it and before the
    batch inserts it: the insert hits the unique constraint, the batch is redone and updates that
    lead. (Without the retry: an IntegrityError; without the constraint: two leads.)"""
    read, committed = threading.Event(), threading.Event()
    errors, inserts = [], []
    leads_insert = sql.leads_insert

    def insert_late(objs, *args, **kwargs):
        inserts.append([lead.email for lead in objs])
        if len(inserts) == 1:
            read.set()
            committed.wait(10)
        return leads_insert(objs, *args, **kwargs)

    def capture():
        try:
            read.wait(10)
            lead_capture(data={"email": "race@acme.example", "first_name": "Api"}, source="api")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            committed.set()
            connection.close()

    monkeypatch.setattr(sql, "leads_insert", insert_late)
    thread = threading.Thread(target=capture)
    thread.start()
    results = lead_capture_many(
        rows=[{"email": "race@acme.example", "company": "Batch"}, {"email": "other@acme.example"}], source="import"
    )
    thread.join()

    assert errors == []
    assert inserts == [["race@acme.example", "other@acme.example"], ["other@acme.example"]]  # redone once
    race = Lead.objects.get(email="race@acme.example")
    assert Lead.objects.count() == 2
    assert results == [(race.pk, False), (Lead.objects.get(email="other@acme.example").pk, True)]
    assert (race.first_name, race.company, race.source) == ("Api", "Batch", "api")
    assert Activity.objects.filter(lead=race, type=ActivityType.CAPTURED).count() == 2


def test_an_erased_person_is_not_captured_again_without_a_double_opt_in(marketing):
    from leads import erasure
    from leads.services import LeadInvalid

    erasure.lead_erase(lead=LeadFactory(email="gone@acme.example"), actor=marketing)
    before = Lead.objects.count()
    with pytest.raises(LeadInvalid) as refused:
        lead_capture_many(rows=[{"email": "new@acme.example"}, {"email": "Gone@acme.example"}], source="import")
    assert refused.value.errors == {"email": [f"{erasure.BLOCKED_MESSAGE} (1 of the batch's addresses)"]}
    assert Lead.objects.count() == before
