"""The rep dashboard's own pages: who gets in, what the queue shows, and the lead page's actions."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import Activity, ActivityType, Qualification, Stage

from .factories import ActivityFactory, LeadFactory, client_for

pytestmark = pytest.mark.django_db

MAX_QUERIES = 15
HTMX = {"HTTP_HX_REQUEST": "true"}


def owned(owner, n: int = 1, stage: str = Stage.SAL, **fields) -> list:
    """n leads of `owner`, handed over a minute apart (the first one most recently)."""
    now = timezone.now()
    return [
        LeadFactory(owner=owner, stage=stage, handed_over_at=now - timedelta(minutes=i), **fields) for i in range(n)
    ]


# --- who may enter ---------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/app/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/app/"


@pytest.mark.parametrize(
    "persona, home, lead_page",
    [("partner_a", "/partner/", 404), ("integration", "/api/docs/", 404), ("marketing", "/app/leads/", 200)],
)
def test_non_sales_personas_are_sent_home_and_cannot_act(request, persona, home, lead_page, rep_a):
    """/app/ takes them to their own home; the lead page is marketing's read-only one (404 for the
    others), and no action is theirs."""
    lead = owned(rep_a)[0]
    client = client_for(request.getfixturevalue(persona))
    assert client.get("/app/")["Location"] == home
    assert client.get("/app/queue/").status_code == 404
    assert client.get(f"/app/leads/{lead.pk}/").status_code == lead_page
    assert client.post(f"/app/leads/{lead.pk}/note/", {"text": "sneaky"}).status_code == 404
    assert not Activity.objects.filter(type=ActivityType.NOTE).exists()


def test_another_reps_lead_is_a_404_and_actions_on_it_change_nothing(rep_a, rep_b):
    lead = owned(rep_a, stage=Stage.SQL)[0]
    client = client_for(rep_b)
    assert client.get(f"/app/leads/{lead.pk}/").status_code == 404
    assert client.post(f"/app/leads/{lead.pk}/won/", {"amount": "100", "currency": "EUR"}).status_code == 404
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value) == (Stage.SQL, None)


def test_home_takes_each_persona_to_its_place(rep_a, sales_manager, partner_a, marketing, integration):
    """"/" and "/app/" (and so sign-in, which goes to "/") take each persona to its home."""
    homes = {rep_a: "/app/", sales_manager: "/app/team/", partner_a: "/partner/", marketing: "/app/leads/"}
    homes[integration] = "/api/docs/"
    for user, home in homes.items():
        client = client_for(user)
        assert client.get("/")["Location"] == home, user.role
        landing = client.get("/app/")
        assert (landing.status_code, landing.get("Location")) == ((200, None) if home == "/app/" else (302, home))


def test_sign_in_lands_a_rep_on_the_queue(rep_a):
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"Forgot your password?" in page.content
    response = client.post("/accounts/login/", {"username": "rita", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == "/app/"
    assert b"My queue" in response.content


def test_password_reset_sends_a_link_that_works(rep_a):
    rep_a.email = "rita@example.com"
    rep_a.save()
    client = Client()
    client.post("/accounts/password_reset/", {"email": "rita@example.com"})
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "Reset your LeadPortal password"
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    form = client.get(link.split("testserver")[1], follow=True)
    assert b"Choose a new password" in form.content
    client.post(form.redirect_chain[-1][0], {"new_password1": "S3cure-enough!", "new_password2": "S3cure-enough!"})
    rep_a.refresh_from_db()
    assert rep_a.check_password("S3cure-enough!")


# --- the queue -------------------------------------------------------------------------------------


def test_the_queue_shows_my_open_leads_newest_handover_first(rep_a, rep_b):
    newest, older = owned(rep_a, 2)
    LeadFactory(owner=rep_a, stage=Stage.WON, company="Closed Co")
    LeadFactory(owner=rep_b, stage=Stage.SAL, company="Not Mine Inc")
    page = client_for(rep_a).get("/app/")
    assert [lead.pk for lead in page.context["page"].object_list] == [newest.pk, older.pk]
    assert b"Closed Co" not in page.content and b"Not Mine Inc" not in page.content


def test_the_queue_filters_and_sorts(rep_a):
    low, high, mid = (
        LeadFactory(owner=rep_a, stage=Stage.SAL, score=s, grade=g) for s, g in [(10, "D"), (90, "A"), (50, "B")]
    )
    won = LeadFactory(owner=rep_a, stage=Stage.WON, score=70, grade="A")
    client = client_for(rep_a)
    by_score = client.get("/app/", {"sort": "-score"}).context["page"].object_list
    assert [lead.pk for lead in by_score] == [high.pk, mid.pk, low.pk]
    grade_a = client.get("/app/", {"grade": "A", "stage": "all"}).context["page"].object_list
    assert sorted(lead.pk for lead in grade_a) == sorted([high.pk, won.pk])
    assert [lead.pk for lead in client.get("/app/", {"stage": "won"}).context["page"].object_list] == [won.pk]


def test_a_new_handover_shows_the_badge_and_a_live_sla_countdown(rep_a):
    lead = owned(rep_a, stage=Stage.MQL)[0]
    lead.respond_by = timezone.now() + timedelta(minutes=30)
    lead.save()
    overdue = owned(rep_a, stage=Stage.MQL, company="Late Ltd")[0]
    overdue.respond_by = timezone.now() - timedelta(minutes=5)
    overdue.save()
    html = client_for(rep_a).get("/app/").content.decode()
    assert html.count('<span class="badge new">New</span>') == 2
    assert 'class="sla overdue"' in html and "overdue 5 min" in html
    # 30 minutes: not amber yet
    assert re.search(r'<span class="sla " [^>]*>(29 min \d\d s|30 min 00 s) left</span>', html)


def test_the_queue_pages_by_25(rep_a):
    owned(rep_a, 30)
    first = client_for(rep_a).get("/app/")
    assert len(first.context["page"].object_list) == 25 and first.context["page"].paginator.num_pages == 2
    assert len(client_for(rep_a).get("/app/", {"page": 2}).context["page"].object_list) == 5


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_queue_queries_do_not_grow_with_rows(rep_a):
    client = client_for(rep_a)
    owned(rep_a, 3)
    few = _queries(client, "/app/")
    owned(rep_a, 40)
    assert _queries(client, "/app/") == few <= MAX_QUERIES


def test_lead_page_queries_do_not_grow_with_history(rep_a):
    lead = owned(rep_a, stage=Stage.SQL)[0]
    client = client_for(rep_a)
    ActivityFactory.create_batch(2, lead=lead)
    few = _queries(client, f"/app/leads/{lead.pk}/")
    ActivityFactory.create_batch(40, lead=lead)
    assert _queries(client, f"/app/leads/{lead.pk}/") == few <= MAX_QUERIES


# --- the lead page's actions -----------------------------------------------------------------------


def test_a_note_updates_the_page_in_place_for_htmx_and_redirects_otherwise(rep_a):
    lead = owned(rep_a)[0]
    client = client_for(rep_a)
    response = client.post(f"/app/leads/{lead.pk}/note/", {"text": "Called the CFO"}, **HTMX)
    assert response.status_code == 200
    assert b"Called the CFO" in response.content and b"Note added." in response.content
    plain = client.post(f"/app/leads/{lead.pk}/note/", {"text": "Second"})
    assert (plain.status_code, plain["Location"]) == (302, f"/app/leads/{lead.pk}/")
    notes = lead.activities.filter(type="note").order_by("pk")
    assert [(n.properties["text"], n.created_by) for n in notes] == [("Called the CFO", rep_a), ("Second", rep_a)]


def test_logging_a_call(rep_a):
    lead = owned(rep_a)[0]
    client_for(rep_a).post(f"/app/leads/{lead.pk}/log/", {"kind": "call", "summary": "Budget talk"})
    activity = lead.activities.get(type=ActivityType.CALL)
    assert (activity.properties, activity.created_by) == ({"summary": "Budget talk"}, rep_a)


def test_an_empty_note_is_refused_with_a_message_and_stores_nothing(rep_a):
    lead = owned(rep_a)[0]
    response = client_for(rep_a).post(f"/app/leads/{lead.pk}/note/", {"text": " "}, **HTMX)
    assert response.status_code == 422
    assert b"This field is required." in response.content
    assert not lead.activities.filter(type="note").exists()


def test_bant_all_four_confirmed_makes_the_lead_sql(rep_a):
    lead = owned(rep_a)[0]
    data = dict.fromkeys(Qualification.CRITERIA, "on") | {f"{n}_note": f"{n} ok" for n in Qualification.CRITERIA}
    response = client_for(rep_a).post(f"/app/leads/{lead.pk}/qualify/", data, **HTMX)
    assert b"BANT complete" in response.content
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL and lead.qualification.complete


def test_bant_confirmed_without_a_note_is_refused(rep_a):
    lead = owned(rep_a)[0]
    response = client_for(rep_a).post(f"/app/leads/{lead.pk}/qualify/", {"budget": "on"}, **HTMX)
    assert response.status_code == 422
    assert b"Say what confirms the budget." in response.content
    assert not Qualification.objects.exists()


def test_close_won_with_value_and_a_missing_value_is_refused(rep_a):
    lead = owned(rep_a, stage=Stage.SQL)[0]
    client = client_for(rep_a)
    refused = client.post(f"/app/leads/{lead.pk}/won/", {"amount": "", "currency": "EUR"}, **HTMX)
    assert refused.status_code == 422
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    client.post(f"/app/leads/{lead.pk}/won/", {"amount": "25000", "currency": "USD"}, **HTMX)
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.deal_currency) == (Stage.WON, Decimal("25000.00"), "USD")


def test_close_lost_needs_a_reason_from_the_list(rep_a):
    lead = owned(rep_a)[0]
    client = client_for(rep_a)
    assert client.post(f"/app/leads/{lead.pk}/lost/", {"reason": "meh"}, **HTMX).status_code == 422
    client.post(f"/app/leads/{lead.pk}/lost/", {"reason": "price", "note": "half the price elsewhere"}, **HTMX)
    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason) == (Stage.LOST, "price")


def test_a_refused_move_shows_its_reason_and_changes_nothing(rep_a):
    lead = owned(rep_a)[0]  # SAL: cannot be won before it is SQL
    response = client_for(rep_a).post(f"/app/leads/{lead.pk}/won/", {"amount": "10", "currency": "EUR"}, **HTMX)
    assert response.status_code == 200
    assert b"A lead cannot move from sal to won" in response.content
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value) == (Stage.SAL, None)


def test_actions_are_post_only_and_need_the_csrf_token(rep_a):
    lead = owned(rep_a)[0]
    client = client_for(rep_a)
    assert client.get(f"/app/leads/{lead.pk}/note/", {"text": "via GET"}).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(rep_a)
    assert strict.post(f"/app/leads/{lead.pk}/note/", {"text": "forged"}).status_code == 403
    assert not lead.activities.filter(type="note").exists()


def test_the_timeline_reads_in_words(rep_a):
    lead = owned(rep_a)[0]
    ActivityFactory(lead=lead, type=ActivityType.STAGE_CHANGE, properties={"from": "mql", "to": "sal", "reason": ""})
    ActivityFactory(lead=lead, type=ActivityType.PAGE_VIEW, properties={"url": "/pricing"})
    html = client_for(rep_a).get(f"/app/leads/{lead.pk}/").content.decode()
    assert "Marketing qualified → Sales accepted" in html
    assert "url: /pricing" in html
