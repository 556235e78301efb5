"""A person's data: the export (GDPR access) holds everything, the erasure leaves no copy anywhere.

The erasure test plants the person's e-mail, names, phone and free text in every place the portal
keeps them (profile, attributes, notes, call logs, event properties, stage reasons, BANT notes,
assignment notes, partner feedback, the admin's change log, sent-mail keys), erases through the API,
then reads every row of every table of the database and looks for each planted value.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail as outbox
from django.db import connection
from django.test import Client
from django.utils import timezone

from leads import erasure
from leads.models import (
    Activity,
    ActivityType,
    ConsentStatus,
    ErasedEmail,
    Lead,
    Qualification,
    SentEmail,
    Stage,
    StageChange,
)
from leads.services import lead_transition
from leads.tests.factories import LeadFactory, client_for
from partners.models import FeedbackStatus, PartnerFeedback
from routing.models import Assignment

pytestmark = pytest.mark.django_db

EMAIL = "zelda.quuxcanary@canary-person.example"
PERSON = {
    "e-mail": EMAIL,
    "first name": "Zeldacanary",
    "last name": "Quuxcanary",
    "phone": "+49 171 5550123",
    "job title": "Canarychief Officer",
    "attribute": "CANARY-ATTR-PRIVATE",
    "note": "CANARY-NOTE-private",
    "call summary": "CANARY-CALL-summary",
    "form answer": "CANARY-FORM-answer",
    "url query": "canaryquery",
    "stage reason": "CANARY-REASON-text",
    "BANT note": "CANARY-BANT-note",
    "assignment note": "CANARY-ASSIGN-note",
    "partner note": "CANARY-PARTNER-note",
}


@pytest.fixture
def person(rep_a, partner_a, marketing):
    lead = LeadFactory(
        email=EMAIL,
        first_name=PERSON["first name"],
        last_name=PERSON["last name"],
        phone=PERSON["phone"],
        job_title=PERSON["job title"],
        company="Canary Works GmbH",
        country="DE",
        source="webinar",
        stage=Stage.SAL,
        owner=rep_a,
        attributes={"private": PERSON["attribute"]},
        consent_status=ConsentStatus.CONFIRMED,
    )
    now = timezone.now()
    Activity.objects.create(lead=lead, type=ActivityType.NOTE, occurred_at=now, properties={"text": PERSON["note"]})
    Activity.objects.create(
        lead=lead, type=ActivityType.CALL, occurred_at=now, properties={"summary": PERSON["call summary"]}
    )
    Activity.objects.create(
        lead=lead,
        type=ActivityType.PAGE_VIEW,
        occurred_at=now - timedelta(days=1),
        source="web",
        properties={
            "url": f"https://shop.example/pricing?who={PERSON['url query']}#{PERSON['first name']}",
            "answers": {"why": PERSON["form answer"]},
            "asset": "pricing-sheet",
        },
    )
    StageChange.objects.create(lead=lead, from_stage="mql", to_stage="sal", reason=PERSON["stage reason"], at=now)
    Qualification.objects.create(lead=lead, budget=True, budget_note=PERSON["BANT note"])
    Assignment.objects.create(
        lead=lead, user=rep_a, status=Assignment.Status.ACCEPTED, strategy="direct", note=PERSON["assignment note"]
    )
    PartnerFeedback.objects.create(
        lead=lead,
        organization=partner_a.partner_organization,
        user=partner_a,
        status=FeedbackStatus.CONTACTED,
        note=PERSON["partner note"],
    )
    LogEntry.objects.create(
        user=marketing,
        content_type=ContentType.objects.get_for_model(Lead),
        object_id=str(lead.pk),
        object_repr=str(lead),
        action_flag=CHANGE,
        change_message="[]",
    )
    SentEmail.objects.create(key=f"consent:{lead.pk}:{EMAIL}")
    return lead


def everything_in_the_database() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (the schema's own names)
            chunks.extend(f"{table}: {row!r}" for row in cursor.fetchall())
    return "\n".join(chunks)


def found(text: str) -> list[str]:
    lowered = text.lower()
    return [what for what, value in PERSON.items() if value.lower() in lowered]


def test_the_export_holds_everything_the_portal_keeps_about_the_person(api, marketing, person):
    response = api(marketing).get(f"/api/v1/leads/{person.pk}/export/")

    assert response.status_code == 200
    data = response.json()
    assert found(response.content.decode()) == list(PERSON)  # every planted value, none missing
    assert data["lead"]["email"] == EMAIL and data["lead"]["owner"] == "rita"
    assert data["lead"]["attributes"] == {"private": PERSON["attribute"]}
    assert [a["type"] for a in data["activities"]] == ["page_view", "note", "call"]
    assert data["stage_history"] == [
        {"from": "mql", "to": "sal", "at": data["stage_history"][0]["at"], "reason": PERSON["stage reason"], "by": None}
    ]
    assert data["qualification"]["budget"] == {"confirmed": True, "note": PERSON["BANT note"]}
    assert [(a["assigned_to"], a["status"], a["note"]) for a in data["assignments"]] == [
        ("rita", "accepted", PERSON["assignment note"])
    ]
    assert [(f["partner"], f["status"], f["note"]) for f in data["partner_feedback"]] == [
        ("Alpine Resellers", "contacted", PERSON["partner note"])
    ]


def test_erasure_leaves_no_copy_of_the_person_in_any_table(api, marketing, person, rep_a):
    assert found(everything_in_the_database()) == list(PERSON)  # the control: all planted

    response = api(marketing).post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == person.pk and response.json()["erased_by"] == "maria"
    assert found(everything_in_the_database()) == []
    lead = Lead.objects.get(pk=person.pk)
    # What the reports count stays: stage, owner, company, country, source, the activities' types and times.
    assert (lead.email, lead.first_name, lead.phone, lead.attributes) == (
        f"erased-{person.pk}@erased.invalid",
        "",
        "",
        {},
    )
    assert (lead.stage, lead.owner, lead.company, lead.country.code, lead.source) == (
        Stage.SAL,
        rep_a,
        "Canary Works GmbH",
        "DE",
        "webinar",
    )
    assert (lead.consent_status, lead.marketing_suppressed, lead.erased_by) == (
        ConsentStatus.WITHDRAWN,
        True,
        marketing,
    )
    assert lead.erased_at is not None and str(lead) == f"Erased person #{lead.pk}"
    view = lead.activities.get(type=ActivityType.PAGE_VIEW)
    assert view.properties == {"url": "https://shop.example/pricing", "asset": "pricing-sheet"}
    assert sorted(lead.activities.values_list("type", flat=True)) == ["call", "note", "page_view"]
    assert ErasedEmail.objects.get().digest == erasure.email_digest(EMAIL)


def test_an_erased_address_comes_back_only_with_a_confirmed_opt_in(
    api, marketing, integration, person, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_BASE_URL = "http://testserver"
    api(marketing).post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json")
    client = api(integration)
    leads_before = Lead.objects.count()

    capture = client.post("/api/v1/leads/", {"email": EMAIL.upper(), "first_name": "Z"}, format="json")
    event = client.post("/api/v1/events/", {"email": EMAIL, "type": "page_view"}, format="json")

    assert capture.status_code == 400 and "erased at their request" in capture.json()["email"][0]
    assert event.status_code == 400 and "erased at their request" in str(event.json())
    assert Lead.objects.count() == leads_before

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/api/v1/leads/", {"email": EMAIL, "double_opt_in": True}, format="json")
    assert again.status_code == 201
    fresh = Lead.objects.get(email=EMAIL)
    assert (fresh.stage, fresh.consent_status) == (Stage.NEW, ConsentStatus.PENDING)
    assert ErasedEmail.objects.count() == 1  # asked for, not yet confirmed: imports stay refused
    [message] = [m for m in outbox.outbox if m.to == [EMAIL]]
    confirm = re.search(r"http://testserver(/consent/[^/\s]+/confirm/)", message.body).group(1)
    assert Client().post(confirm).status_code == 200
    fresh.refresh_from_db()
    assert (fresh.stage, fresh.consent_status) == (Stage.MAL, ConsentStatus.CONFIRMED)
    assert ErasedEmail.objects.count() == 0


def test_erasing_twice_is_refused_and_erasing_needs_confirm(api, marketing, person):
    client = api(marketing)
    unconfirmed = client.post(f"/api/v1/leads/{person.pk}/erase/", {}, format="json")
    assert unconfirmed.status_code == 400 and set(unconfirmed.json()) == {"confirm"}
    assert Lead.objects.get(pk=person.pk).email == EMAIL  # nothing changed

    assert client.post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json").status_code == 200
    again = client.post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json")
    assert again.status_code == 409 and "erased already" in again.json()["detail"]


def test_an_erased_mql_is_disqualified_and_leaves_the_reps_queue(
    api, marketing, rep_a, django_capture_on_commit_callbacks
):
    lead = LeadFactory(email="mql.person@canary-person.example", stage=Stage.MAL)
    lead_transition(lead=lead, to_stage=Stage.MQL)
    Assignment.objects.create(lead=lead, user=rep_a, status=Assignment.Status.ACTIVE, strategy="direct")
    Lead.objects.filter(pk=lead.pk).update(owner=rep_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = api(marketing).post(f"/api/v1/leads/{lead.pk}/erase/", {"confirm": True}, format="json")

    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.DISQUALIFIED
    assert lead.stage_changes.order_by("-at", "-pk").first().reason == erasure.ERASED_REASON
    assert not Assignment.objects.filter(lead=lead, status__in=Assignment.OPEN).exists()


@pytest.mark.parametrize("persona", ["sales_manager", "rep_a", "integration"])
def test_only_marketing_handles_data_requests(api, person, persona, request):
    client = api(request.getfixturevalue(persona))

    export = client.get(f"/api/v1/leads/{person.pk}/export/")
    erase = client.post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json")

    assert (export.status_code, erase.status_code) == (403, 403)
    assert found(export.content.decode() + erase.content.decode()) == []
    assert Lead.objects.get(pk=person.pk).erased_at is None


def test_a_partner_gets_404(api, person, partner_a):
    client = api(partner_a)
    assert client.get(f"/api/v1/leads/{person.pk}/export/").status_code == 404
    assert client.post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json").status_code == 404
    assert Lead.objects.get(pk=person.pk).erased_at is None


def test_the_admin_offers_both_to_marketing_only(person, marketing, sales_manager):
    page = client_for(marketing, apps=["leads"]).get(f"/admin/leads/lead/{person.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/leads/lead/{person.pk}/erase/".encode() in page.content
    manager_page = client_for(sales_manager, apps=["leads"]).get(f"/admin/leads/lead/{person.pk}/change/")
    assert manager_page.status_code == 200 and b"/erase/" not in manager_page.content
    assert client_for(sales_manager).get(f"/admin/leads/lead/{person.pk}/personal-data/").status_code == 403
    assert client_for(sales_manager).post(f"/admin/leads/lead/{person.pk}/erase/").status_code == 403

    download = client_for(marketing).get(f"/admin/leads/lead/{person.pk}/personal-data/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    assert found(download.content.decode()) == list(PERSON)
    confirm = client_for(marketing).get(f"/admin/leads/lead/{person.pk}/erase/")
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.content
    assert Lead.objects.get(pk=person.pk).erased_at is None  # showing the question changes nothing

    done = client_for(marketing).post(f"/admin/leads/lead/{person.pk}/erase/")
    assert done.status_code == 302
    assert Lead.objects.get(pk=person.pk).erased_by == marketing
    assert found(everything_in_the_database()) == []


def test_erasure_reaches_the_imports_copies_and_a_finished_import_keeps_no_file(api, marketing, person):
    from imports.models import ImportJob, ImportRejection

    header = ["E-Mail", "Vorname"]
    running = ImportJob.objects.create(
        filename="fair.csv",
        text=f"E-Mail;Vorname\nother@fair.example;Otto\n{EMAIL.upper()};{PERSON['first name']}\n",
        encoding="utf-8",
        delimiter=";",
        header=header,
        mapping={"E-Mail": "email"},
        status=ImportJob.Status.RUNNING,
        total_rows=2,
    )
    done = ImportJob.objects.create(
        filename="old.csv", text="", encoding="utf-8", delimiter=";", header=header, status=ImportJob.Status.DONE
    )
    ImportRejection.objects.create(job=done, line=7, values=[EMAIL, "x"], errors={"phone": ["Too long."]})
    ImportRejection.objects.create(job=done, line=8, values=["someone@else.example", "y"], errors={"phone": ["Bad."]})

    api(marketing).post(f"/api/v1/leads/{person.pk}/erase/", {"confirm": True}, format="json")

    assert found(everything_in_the_database()) == []
    running.refresh_from_db()
    assert running.text == "E-Mail;Vorname\nother@fair.example;Otto\n(erased)\n"  # still two rows: the cursor holds
    done.refresh_from_db()
    assert list(ImportRejection.objects.values_list("line", flat=True)) == [8]
